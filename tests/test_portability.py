"""LabelLoop runs on Linux, macOS and Windows: POSIX-only calls live in one platform module,
hard links fall back to copies, replacements retry while Windows holds the target."""
from __future__ import annotations

import ast
import errno
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src import platform_support
from src.cli import main as cli_main
from src.db.frames import list_frames
from src.db.project import Project
from src.db.sources import find_source
from src.platform_support import link_or_copy, pid_alive, replace_file

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_MODULE = ROOT / "src" / "platform_support.py"
POSIX_ONLY_MODULES = {"fcntl", "termios", "resource", "pwd", "grp", "pty", "tty"}


def posix_only_uses(path: Path) -> list[str]:
    """Imports of POSIX-only modules and uses of signal.SIGUSR*, os.fork, os.kill(.., 0)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{what} (line {node.lineno})" for node in ast.walk(tree)
            for what in _posix_only(node)]


def _posix_only(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [f"import {a.name}" for a in node.names if a.name.split(".")[0] in POSIX_ONLY_MODULES]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
            and node.module.split(".")[0] in POSIX_ONLY_MODULES:
        return [f"from {node.module} import ..."]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name = f"{node.value.id}.{node.attr}"
        if node.attr.startswith("SIGUSR") or name in ("os.fork", "os.forkpty"):
            return [name]
    if isinstance(node, ast.Call) and _is_kill_zero(node):
        return ["os.kill(pid, 0)"]
    return []


def _is_kill_zero(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "kill" and len(call.args) == 2
            and isinstance(call.args[1], ast.Constant) and call.args[1].value == 0)


def _sources() -> list[Path]:
    files = [ROOT / "main.py", *sorted((ROOT / "src").rglob("*.py")),
             *sorted((ROOT / "benchmarks").rglob("*.py"))]
    return [f for f in files if f != PLATFORM_MODULE]


def test_posix_only_calls_live_in_the_platform_module():
    offenders = {str(p.relative_to(ROOT)): uses for p in _sources() if (uses := posix_only_uses(p))}
    assert offenders == {}, "use src/platform_support.py instead"


def test_the_portability_check_catches_each_kind(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import fcntl\nfrom resource import getrlimit\nimport os, signal\n"
                   "signal.signal(signal.SIGUSR1, print)\nos.fork()\nos.kill(123, 0)\n")
    uses = " ".join(posix_only_uses(bad))
    for expected in ("import fcntl", "from resource", "signal.SIGUSR1", "os.fork",
                     "os.kill(pid, 0)"):
        assert expected in uses


def _refuse_links(monkeypatch, code=errno.EXDEV):
    calls = []

    def refuse(src, dst, *args, **kwargs):
        calls.append(dst)
        raise OSError(code, os.strerror(code), str(dst))
    monkeypatch.setattr(os, "link", refuse)
    return calls


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK])
def test_link_or_copy_copies_when_the_file_system_refuses_links(tmp_path, monkeypatch, code):
    source = tmp_path / "a.png"
    source.write_bytes(b"\x89PNG data")
    calls = _refuse_links(monkeypatch, code)
    assert link_or_copy(source, tmp_path / "b.png") is False
    assert calls and (tmp_path / "b.png").read_bytes() == source.read_bytes()
    assert os.stat(tmp_path / "b.png").st_nlink == 1


def test_link_or_copy_links_where_it_can_and_never_overwrites(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(b"data")
    assert link_or_copy(source, tmp_path / "b.png") is True
    assert os.stat(source).st_nlink == 2
    with pytest.raises(FileExistsError):
        link_or_copy(source, tmp_path / "b.png")


def _image_folder(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            folder / f"img_{i}.png")
    return folder


def test_import_build_and_export_copy_when_links_fail(tmp_path, monkeypatch):
    """A project on a FAT/exFAT drive: every place that hard-links falls back to a copy."""
    calls = _refuse_links(monkeypatch)
    project = tmp_path / "proj"
    assert cli_main(["--project", str(project), "demo", "--no-train"]) == 0
    folder = _image_folder(tmp_path / "photos")
    assert cli_main(["--project", str(project), "import", str(folder)]) == 0
    with Project.open(project) as proj:
        photos = find_source(proj.conn, "photos")
        imported = [proj.abspath(f.image_path) for f in list_frames(proj.conn, photos.id)]
    assert len(imported) == 4 and all(os.stat(p).st_nlink == 1 for p in imported)

    assert cli_main(["--project", str(project), "dataset", "build", "det", "--task",
                     "detect", "--split", "0.7,0.3,0"]) == 0
    snapshot = [p for p in (project / "datasets" / "det").rglob("*.png")]
    assert snapshot and all(os.stat(p).st_nlink == 1 for p in snapshot)

    out = tmp_path / "export"
    assert cli_main(["--project", str(project), "export", str(out), "--format", "coco"]) == 0
    exported = [p for p in out.rglob("*.png")]
    assert exported and all(os.stat(p).st_nlink == 1 for p in exported)
    assert len(calls) >= len(imported) + len(snapshot) + len(exported)


class _Busy(PermissionError):
    def __init__(self, winerror: int | None) -> None:
        super().__init__(13, "the process cannot access the file")
        self.winerror = winerror


def test_replace_file_retries_while_windows_holds_the_target(tmp_path, monkeypatch):
    real, failures = os.replace, [_Busy(32), _Busy(5)]

    def flaky(src, dst):
        if failures:
            raise failures.pop(0)
        real(src, dst)
    monkeypatch.setattr(os, "replace", flaky)
    (tmp_path / "new").write_text("new")
    (tmp_path / "old").write_text("old")
    replace_file(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "old").read_text() == "new" and not failures


def test_replace_file_does_not_retry_a_real_permission_error(tmp_path, monkeypatch):
    attempts = []

    def denied(src, dst):
        attempts.append(dst)
        raise _Busy(None)
    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(PermissionError):
        replace_file(tmp_path / "a", tmp_path / "b")
    assert len(attempts) == 1


def test_pid_alive_never_signals_on_windows(monkeypatch):
    """os.kill(pid, 0) terminates the process on Windows: ask psutil there."""
    import psutil
    monkeypatch.setattr(platform_support, "IS_WINDOWS", True)
    monkeypatch.setattr(os, "kill", lambda *a: pytest.fail("os.kill called on Windows"))
    asked = []
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: asked.append(pid) or pid == 4242)
    assert pid_alive(4242) and not pid_alive(4243) and asked == [4242, 4243]
    assert pid_alive(os.getpid()) and not pid_alive(None)


@pytest.mark.parametrize("name", ["CON", "nul", "com1", "run.", "lpt9.txt"])
def test_run_names_reserved_on_windows_are_refused(name):
    from src.errors import ConfigError
    from src.training.config import load_config
    with pytest.raises(ConfigError, match="name"):
        load_config(ROOT / "configs" / "crop_classifier.yaml", [f"name={name}"])


def test_ci_workflow_runs_the_suite_on_the_three_desktop_systems():
    import yaml
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["test"]
    assert set(job["strategy"]["matrix"]["os"]) == {"ubuntu-latest", "windows-latest",
                                                   "macos-latest"}
    assert job["strategy"]["matrix"]["python"] == ["3.11"]
    commands = [step.get("run", "") for step in job["steps"]]
    assert "python -m pip install -r requirements.txt" in commands
    assert any(c.startswith("python -m pytest") for c in commands)
    makefile = (ROOT / "Makefile").read_text()
    assert "-m pytest $(PYTEST_ARGS)" in makefile     # the same runner and options as make test


def test_readme_gives_the_windows_and_macos_set_up():
    readme = (ROOT / "README.md").read_text()
    assert "py -3.11 -m venv .venv" in readme and ".venv\\Scripts\\python" in readme
    assert "device=mps" in readme


def test_lower_priority_puts_a_child_below_the_gui_and_survives_a_gone_one():
    import subprocess
    import sys

    import psutil

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        before = psutil.Process(child.pid).nice()
        assert platform_support.lower_priority(child.pid)
        after = psutil.Process(child.pid).nice()
        if platform_support.IS_WINDOWS:
            assert after == psutil.BELOW_NORMAL_PRIORITY_CLASS
        else:
            assert after > before
    finally:
        child.kill()
        child.wait()
    assert not platform_support.lower_priority(child.pid)   # gone: refused, no exception


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_lower_thread_priority_lowers_only_the_calling_thread_and_never_raises_it():
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main, seen = nice(), {}

    def body() -> None:
        seen["ok"] = platform_support.lower_thread_priority(10)
        seen["after"] = nice()
        seen["again"] = platform_support.lower_thread_priority(5)   # 5 would raise it
        seen["kept"] = nice()

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen["ok"] and seen["after"] == max(main, 10)
    assert seen["again"] and seen["kept"] == seen["after"]
    assert nice() == main                        # the calling (GUI) thread is untouched
