"""`python main.py` says in one line why the window cannot open, instead of Qt's abort."""
from __future__ import annotations

import ctypes

from src.cli import main
from src.gui import platform_check


def test_no_display_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["--project", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DISPLAY is not set" in err
    assert not (tmp_path / "p").exists()              # nothing was created


def test_a_missing_xcb_library_is_named_with_the_packages_to_install(monkeypatch, capsys,
                                                                     tmp_path):
    def cannot_load(path, *args, **kwargs):
        raise OSError("libxcb-cursor.so.0: cannot open shared object file: No such file")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(ctypes, "CDLL", cannot_load)
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: None)
    assert main(["--project", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing libxcb-cursor.so.0" in err
    assert "libxcb-icccm4" in err and "libxcb-keysyms1" in err


def test_the_real_plugin_loads_on_this_machine_or_names_what_is_missing():
    plugin = platform_check.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    missing = platform_check.missing_libraries(plugin)
    assert all(name.startswith("lib") for name in missing)
