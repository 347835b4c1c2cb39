"""Questions about other processes on this machine."""
from __future__ import annotations

import os
import signal


def pid_alive(pid: int | None) -> bool:
    """True when a process with this id exists (ours included); False for None/0."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it just belongs to someone else
        return True
    return True


def crash_point(stage: str) -> None:
    """Test hook: SIGKILL this process at `stage` when $LABELLOOP_CRASH_AT names it, so the
    kill tests can stop a write at each step and check that nothing is left half-done."""
    if os.environ.get("LABELLOOP_CRASH_AT") == stage:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
