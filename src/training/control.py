"""Cooperative control of a running training: stop (cancel) and pause/resume.

The trainer calls `checkpoint()` between batches: it blocks while paused and returns
True when a stop was requested, so the trainer can write a checkpoint and leave.
Thread-safe: the GUI or a signal handler calls `request_stop`/`pause`/`resume`
from another thread.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator


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


COMMANDS = ("pause", "resume", "cancel")


def apply_command(control: RunControl, line: str) -> str:
    """Apply one control line — `{"cmd": "pause"}` (or the bare word) — and return the
    command; ValueError names what was wrong with the line."""
    text = line.strip()
    try:
        cmd = json.loads(text).get("cmd") if text.startswith("{") else text
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"not a control command: {text[:80]!r}") from exc
    if cmd not in COMMANDS:
        raise ValueError(f"unknown control command {cmd!r}; expected one of "
                         f"{', '.join(COMMANDS)}")
    {"pause": control.pause, "resume": control.resume, "cancel": control.request_stop}[cmd]()
    return cmd


def follow_commands(lines: Iterable[str], control: RunControl,
                    report: Callable[[str], None]) -> threading.Thread:
    """Read control lines (a child's stdin) in a daemon thread until they end. The end of the
    stream is not a command: a supervisor that goes away leaves the training running."""
    def read() -> None:
        try:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    report(f"control: {apply_command(control, line)}")
                except ValueError as exc:
                    report(f"control: {exc}")
        except (OSError, ValueError):  # stdin closed or unreadable: no supervisor
            return

    thread = threading.Thread(target=read, name="training-control", daemon=True)
    thread.start()
    return thread
