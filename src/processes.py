"""Questions about other processes on this machine, and the crash hook of the kill tests."""
from __future__ import annotations

import os

from src.platform_support import hard_kill_self, pid_alive

__all__ = ["crash_point", "pid_alive"]


def crash_point(stage: str) -> None:
    """Test hook: kill this process at once at `stage` when $LABELLOOP_CRASH_AT names it, so
    the kill tests can stop a write at each step and check that nothing is left half-done."""
    if os.environ.get("LABELLOOP_CRASH_AT") == stage:
        hard_kill_self()
