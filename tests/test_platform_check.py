"""`python main.py` says in one line why the window cannot open, instead of Qt's abort."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from src.cli import main
from src.gui import platform_check


def test_no_display_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["--project", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DISPLAY is not set" in err
    assert not (tmp_path / "p").exists()              # nothing was created


def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch, capsys, tmp_path):
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}
    real_cdll = ctypes.CDLL

    def loader(name, *args, **kwargs):
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return real_cdll(name, *args, **kwargs)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(ctypes, "CDLL", loader)
    assert main(["--project", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing libxcb-cursor.so.0, libxcb-icccm.so.4" in err
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 (" in err


def test_the_list_covers_what_the_real_plugin_links_against():
    """Drift guard: every X11/GL/font library `ldd` finds for PyQt6's xcb plugin is listed."""
    import PyQt6
    plugin = Path(PyQt6.__file__).parent / "Qt6/plugins/platforms/libqxcb.so"
    if shutil.which("ldd") is None or not plugin.is_file():
        pytest.skip("needs ldd and a pip-installed PyQt6")
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    linked = {line.split()[0] for line in out.splitlines() if "=>" in line}
    prefixes = ("libxcb", "libX", "libxkb", "libEGL", "libGL.", "libfontconfig", "libfreetype",
                "libdbus", "libglib")
    wanted = {name for name in linked if name.startswith(prefixes)}
    assert wanted - set(platform_check.XCB_LIBRARIES) == set()
    assert platform_check.missing_libraries() == []     # this machine has them all
