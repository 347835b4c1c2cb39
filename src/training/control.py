"""Cooperative control of a running training: stop (cancel) and pause/resume.

The trainer calls `checkpoint()` between batches: it blocks while paused and returns
True when a stop was requested, so the trainer can write a checkpoint and leave.
Thread-safe: the GUI or a signal handler calls `request_stop`/`pause`/`resume`
from another thread.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class RunControl:
    """Stop and pause flags shared between a trainer and whoever supervises it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._hold_listeners: list[Callable[[bool], None]] = []

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
        if not self._running.is_set():
            self._tell_hold(True)
            while not self._running.is_set():
                self._running.wait(poll_s)  # short waits keep signal handlers prompt
            self._tell_hold(False)
        return self._stop.is_set()

    @contextmanager
    def hold_listener(self, listener: Callable[[bool], None]) -> Iterator[None]:
        """Call `listener(True)` when the trainer starts waiting in a pause and
        `listener(False)` when it goes on, in the trainer's own thread (so it may use the
        trainer's database connection), for the duration of the block."""
        self._hold_listeners.append(listener)
        try:
            yield
        finally:
            self._hold_listeners.remove(listener)

    def _tell_hold(self, held: bool) -> None:
        for listener in list(self._hold_listeners):
            listener(held)
