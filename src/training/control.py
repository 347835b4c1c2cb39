"""Cooperative control of a running training: stop (cancel) and pause/resume.

The trainer calls `checkpoint()` between batches: it blocks while paused and returns
True when a stop was requested, so the trainer can write a checkpoint and leave.
Thread-safe: the GUI or a signal handler calls `request_stop`/`pause`/`resume`
from another thread.
"""
from __future__ import annotations

import threading


class RunControl:
    """Stop and pause flags shared between a trainer and whoever supervises it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused trainer must wake up to stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def checkpoint(self, poll_s: float = 0.1) -> bool:
        """Block while paused; return True when the trainer should stop now."""
        while not self._running.wait(poll_s):
            pass
        return self._stop.is_set()
