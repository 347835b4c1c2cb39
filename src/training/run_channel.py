"""The files a training run talks through, so any window can follow and steer it later.

A run appends every event to `<run dir>/events.jsonl` and polls `<run dir>/control.jsonl`
for `{"cmd": "pause" | "resume" | "cancel"}` lines. Unlike the child's stdin, both outlive
the window that started it: a window reopened while the run goes on reads the events from
the start and appends its commands. Plain files work on every OS; no POSIX signals.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from src.training.control import COMMANDS, RunControl, apply_command
from src.training.events import EventBus

EVENTS_FILE = "events.jsonl"
CONTROL_FILE = "control.jsonl"
POLL_S = 0.25


def attach_event_log(bus: EventBus, run_dir: Path) -> None:
    """Append every event of `bus` to `<run_dir>/events.jsonl`, one JSON object a line."""
    path = Path(run_dir) / EVENTS_FILE

    def write(event: str, payload) -> None:
        data = payload.to_dict() if hasattr(payload, "to_dict") else dict(payload)
        line = json.dumps({"event": event, **data}, default=str) + "\n"
        with suppress(OSError):  # a full disk must not end the training; the store still logs
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line)

    bus.on("*", write)


def read_events(run_dir: Path, offset: int = 0) -> tuple[list[tuple[str, dict]], int]:
    """Events appended since byte `offset` (whole lines only) and the offset to read next."""
    lines, offset = _new_lines(Path(run_dir) / EVENTS_FILE, offset)
    events = []
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            events.append((str(data.pop("event", "")), data))
    return events, offset


def send_command(run_dir: Path, cmd: str) -> None:
    """Ask the run in `run_dir` to pause, resume or cancel (applied between batches)."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown control command {cmd!r}")
    with open(Path(run_dir) / CONTROL_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"cmd": cmd}) + "\n")


@contextmanager
def control_file_commands(run_dir: Path, control: RunControl) -> Iterator[None]:
    """While the block runs, apply the commands appended to `<run_dir>/control.jsonl`.
    Commands written for an earlier attempt of the run are not replayed."""
    path = Path(run_dir) / CONTROL_FILE
    path.unlink(missing_ok=True)
    done = threading.Event()

    def poll() -> None:
        offset = 0
        while not done.wait(POLL_S):
            lines, offset = _new_lines(path, offset)
            for line in lines:
                try:
                    apply_command(control, line)
                except ValueError:
                    continue

    thread = threading.Thread(target=poll, name="training-control-file", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(2)


def _new_lines(path: Path, offset: int) -> tuple[list[str], int]:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1            # a line still being written waits for its end
    text = data[:end].decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()], offset + end
