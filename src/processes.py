"""Questions about other processes on this machine."""
from __future__ import annotations

from src.platform_support import pid_alive

__all__ = ["pid_alive"]
