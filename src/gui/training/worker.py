"""TrainingWorker: a QThread that supervises one `main.py train --events` child process.

Training is heavy Python: in a child it cannot freeze the window (no GIL contention) and a
crash or an out-of-memory kill takes only the child. The worker turns the child's JSON event
lines into signals and sends pause/resume/cancel as JSON lines on the child's stdin — the
control channel every OS has (src/training/control.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QThread, pyqtSignal

from src.platform_support import lower_priority

REPO = Path(__file__).resolve().parents[3]
_STDERR_TAIL = 40


@dataclass
class TrainingRequest:
    """What to train: a config with overrides on a dataset, or a run to resume."""
    project_root: Path
    config: Path | None = None
    dataset: str | None = None
    overrides: list[str] = field(default_factory=list)
    resume_run_id: int | None = None

    def argv(self) -> list[str]:
        head = [sys.executable, str(REPO / "main.py"), "--project", str(self.project_root),
                "train"]
        if self.resume_run_id is not None:
            return [*head, "--resume", str(self.resume_run_id), "--events"]
        return [*head, str(self.config), *self.overrides, "--dataset", str(self.dataset),
                "--events"]

    def resumed(self, run_id: int) -> "TrainingRequest":
        return TrainingRequest(self.project_root, resume_run_id=run_id)


class RunControls:
    """Pause / resume / cancel of a training run through the subclass's `_send(cmd)`: the
    child's stdin for the worker that started it, the run's control file for a follower."""

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def cancel(self) -> None:
        self._send("cancel")

    def _send(self, cmd: str) -> None:
        """How a command reaches the run: TrainingWorker and RunFollower define it."""
        raise NotImplementedError(f"{type(self).__name__} does not say how a {cmd!r} "
                                  f"command reaches its run")


class TrainingWorker(RunControls, QThread):
    """Runs the child and reports; `pause`/`resume`/`cancel` may be called from the GUI."""
    event_received = pyqtSignal(str, dict)     # every event: name, payload
    log_line = pyqtSignal(str)                 # what the child says on stderr
    run_finished = pyqtSignal(dict)            # {run_id, status, run_dir, error}
    run_failed = pyqtSignal(str, object)       # the reason in plain words, run id or None

    def __init__(self, request: TrainingRequest, parent=None) -> None:
        super().__init__(parent)
        self.request = request
        self.run_id: int | None = None
        self._proc: subprocess.Popen | None = None
        self._stdin_lock = threading.Lock()
        self._stderr: deque[str] = deque(maxlen=_STDERR_TAIL)
        self._pending: list[str] = []          # commands given before the child started
        self._lines: queue.Queue = queue.Queue()
        self._detached = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _send(self, cmd: str) -> None:
        with self._stdin_lock:
            if self._proc is None:
                self._pending.append(cmd)
                return
            if self._proc.poll() is not None:
                return
            with contextlib.suppress(OSError, ValueError):   # the child is already gone
                self._proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
                self._proc.stdin.flush()

    def run(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.request.argv(), cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            self.run_failed.emit(f"could not start the training process: {exc}", None)
            return
        lower_priority(self._proc.pid)      # the window keeps its event loop on a busy CPU
        for cmd in self._take_pending():
            self._send(cmd)
        errors = threading.Thread(target=self._read_stderr, daemon=True)
        errors.start()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        final = self._read_events()
        if self._detached.is_set():
            return                  # the child trains on, unsupervised
        code = self._proc.wait()
        errors.join(5)
        with self._stdin_lock:
            self._proc.stdin.close()
        self._report(code, final)

    def detach(self) -> None:
        """Stop supervising and let the child train on in the background (its events still go
        to the store, TensorBoard and the run folder); this thread ends at once."""
        self._detached.set()

    def _take_pending(self) -> list[str]:
        with self._stdin_lock:
            pending, self._pending = self._pending, []
        return pending

    def kill(self) -> None:
        """End the child at once (a last resort: no checkpoint is written)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _pump_stdout(self) -> None:
        """Blocking reads live in a plain daemon thread, so the QThread can always end."""
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next_lines(self):
        while not self._detached.is_set():
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return
            yield line

    def _read_events(self) -> dict | None:
        final = None
        for line in self._next_lines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.log_line.emit(line.rstrip())
                continue
            name = event.pop("event", "")
            self.run_id = event.get("run_id", self.run_id)
            if name == "run_status":
                final = event
            self.event_received.emit(name, event)
        return final

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            line = line.rstrip()
            if line:
                self._stderr.append(line)
                self.log_line.emit(line)

    def _report(self, code: int, final: dict | None) -> None:
        if final is not None and final.get("status") in ("completed", "cancelled", "queued"):
            self.run_finished.emit(final)
            return
        self.run_failed.emit(failure_reason(code, list(self._stderr), final), self.run_id)


def failure_reason(code: int, stderr: list[str], final: dict | None) -> str:
    """Why a training child ended without finishing, in plain words."""
    if final is not None and final.get("error"):
        return f"the training failed: {final['error']}"
    if code < 0:
        name = _signal_name(-code)
        return (f"the training process was killed ({name}) — often the system ran out of "
                f"memory; Retry continues from the last checkpoint")
    user_error = next((line for line in reversed(stderr) if line.startswith("error: ")), None)
    if code == 2 and user_error:
        return user_error[len("error: "):]
    last = stderr[-1] if stderr else "no message"
    return f"the training process stopped unexpectedly (exit code {code}): {last}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
