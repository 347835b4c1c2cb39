"""Everything that differs between Linux, macOS and Windows, in one place.

The rest of LabelLoop never imports `fcntl`, `termios` or `resource`, never uses
`signal.SIGUSR*` or `os.fork`, and never calls `os.kill(pid, 0)` (on Windows that
*terminates* the process): it asks this module (tests/test_portability.py checks it).
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import time
from pathlib import Path

IS_WINDOWS = sys.platform == "win32"
# Windows reports a target held open by another process (an antivirus scan, an indexer,
# a viewer) as ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32); it goes away.
_BUSY_WINERRORS = {5, 32}
_REPLACE_TRIES = 10


def pid_alive(pid: int | None) -> bool:
    """True when a process with this id exists (ours included); False for None/0."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    if IS_WINDOWS:
        import psutil

        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it just belongs to someone else
        return True
    return True


def lower_priority(pid: int) -> bool:
    """Run a background process (a training child) below the GUI's priority, so the window
    stays responsive while it uses every core: nice 10 on POSIX, BELOW_NORMAL on Windows.
    False when the OS refuses (the child then runs at normal priority, nothing else changes)."""
    import psutil

    level = psutil.BELOW_NORMAL_PRIORITY_CLASS if IS_WINDOWS else 10
    try:
        psutil.Process(pid).nice(level)
    except (psutil.Error, OSError):
        return False
    return True


def lower_thread_priority(level: int = 10) -> bool:
    """Run the calling thread (background model work: embedding frames, training an
    adapter) below the GUI thread's priority: nice `level` on Linux, BELOW_NORMAL on
    Windows. Call it before the thread's first torch operation: the OpenMP threads a thread
    starts inherit its priority. Then a click decoded on the GUI thread gets the cores
    first instead of sharing them with an encoder operation that runs for up to ~300 ms.
    False where the OS has no per-thread priority this can set (macOS) or refuses; the
    thread then runs at normal priority, nothing else changes."""
    if IS_WINDOWS:
        import ctypes

        kernel32 = ctypes.windll.kernel32
        return bool(kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1))
    if not sys.platform.startswith("linux"):
        return False                # setpriority(PRIO_PROCESS, tid) is per thread on Linux only
    import threading

    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < level:   # never raise it (not allowed)
            os.setpriority(os.PRIO_PROCESS, tid, level)
    except OSError:
        return False
    return True


def replace_file(source: str | Path, target: str | Path) -> None:
    """os.replace, retried for about a second while Windows reports the target busy."""
    for attempt in range(_REPLACE_TRIES):
        try:
            os.replace(source, target)
            return
        except PermissionError as exc:
            if not _is_busy(exc) or attempt == _REPLACE_TRIES - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def _is_busy(exc: OSError) -> bool:
    return getattr(exc, "winerror", None) in _BUSY_WINERRORS


def link_or_copy(source: str | Path, target: str | Path) -> bool:
    """Hard-link `source` at `target`, or copy it where the file system refuses links
    (FAT/exFAT drives, another device, Windows without the right); True when linked.
    An existing `target` is an error either way (FileExistsError)."""
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "target exists", str(target)) from None
        shutil.copy2(source, target)
        return False


def pause_resume_signals() -> tuple[int, int] | None:
    """(pause, resume) signal numbers where the OS has them (POSIX: SIGUSR1/SIGUSR2), else
    None. Only an extra for shell users: supervisors control a training through its stdin."""
    pause, resume = getattr(signal, "SIGUSR1", None), getattr(signal, "SIGUSR2", None)
    if pause is None or resume is None:
        return None
    return pause, resume


def stop_signals() -> tuple[int, ...]:
    """The signals that ask a process to stop gracefully here (SIGINT, and SIGTERM where a
    handler for it can be installed, i.e. everywhere Python runs, Windows included)."""
    return tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


def hard_kill_self() -> None:
    """End this process at once, as a crash would (SIGKILL; TerminateProcess on Windows)."""
    if IS_WINDOWS:
        os._exit(137)
    os.kill(os.getpid(), signal.SIGKILL)
