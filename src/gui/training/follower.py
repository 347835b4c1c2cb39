"""Reattaching to a training that outlived its window: a RunFollower reads the run's
events.jsonl from the start and steers it through control.jsonl (src/training/run_channel),
watching the store and the process for the end; a FollowingMonitor is the usual monitor
driven by it (its Retry starts a normal supervised resume)."""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import psutil
from PyQt6.QtCore import QThread, pyqtSignal

from src.db import runs
from src.db.project import Project
from src.db.records import TrainingRun
from src.gui.training.monitor import TrainingMonitor
from src.gui.training.worker import RunControls, TrainingRequest
from src.processes import pid_alive
from src.training.live_runs import FINISHED, lost_reason, mark_lost
from src.training.run_channel import read_events, send_command

_POLL_S = 0.2
_CHECK_S = 0.5
_EXIT_WAIT_S = 30.0         # writing the report and registering the model


class RunFollower(RunControls, QThread):
    """The TrainingWorker's signals and controls, for a run in a process we did not start."""
    event_received = pyqtSignal(str, dict)
    log_line = pyqtSignal(str)
    run_finished = pyqtSignal(dict)
    run_failed = pyqtSignal(str, object)

    def __init__(self, project_root: Path, run: TrainingRun, parent=None) -> None:
        super().__init__(parent)
        self.project_root = Path(project_root)
        self.run_id, self.pid = run.id, run.pid
        self.run_dir = self.project_root / (run.run_dir or "")
        self._offset = 0
        self._seen_running = False
        self._detached = threading.Event()

    def _send(self, cmd: str) -> None:
        try:
            send_command(self.run_dir, cmd)
        except OSError as exc:
            self.log_line.emit(f"could not send {cmd}: {exc}")

    def detach(self) -> None:
        """Stop following; the run goes on."""
        self._detached.set()

    def kill(self) -> None:
        """End the run's process at once (a last resort: no checkpoint is written)."""
        with contextlib.suppress(psutil.Error):
            psutil.Process(self.pid).kill()

    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                self._follow(project)
        except Exception as exc:  # noqa: BLE001 — every failure leaves as a signal
            self.run_failed.emit(f"could not follow run {self.run_id}: {exc}", self.run_id)

    def _follow(self, project: Project) -> None:
        checked = 0.0
        while not self._detached.is_set():
            self._emit_new_events()
            if time.monotonic() - checked >= _CHECK_S:
                checked = time.monotonic()
                if self._ended(project.conn):
                    return
            self._detached.wait(_POLL_S)

    def _emit_new_events(self) -> None:
        events, self._offset = read_events(self.run_dir, self._offset)
        for name, payload in events:
            self.event_received.emit(name, payload)

    def _ended(self, conn) -> bool:
        run = runs.get_run(conn, self.run_id)
        if run is None:
            self.run_failed.emit(f"run {self.run_id} is no longer in the project", None)
            return True
        if run.status in FINISHED:
            if self._seen_running:           # it still holds the machine lock until it ends
                self._wait_for_exit(run.pid)
            self._emit_new_events()          # what it wrote before it recorded the end
            if run.status == "failed":
                self.run_failed.emit(f"the training failed: {run.error}", run.id)
            else:
                self.run_finished.emit({"run_id": run.id, "status": run.status,
                                        "run_dir": run.run_dir, "error": run.error})
            return True
        self._seen_running = True
        if not pid_alive(run.pid):
            self._emit_new_events()
            mark_lost(conn, run)
            self.run_failed.emit(lost_reason(run), run.id)
            return True
        return False

    def _wait_for_exit(self, pid: int | None) -> None:
        deadline = time.monotonic() + _EXIT_WAIT_S
        while pid_alive(pid) and time.monotonic() < deadline and not self._detached.is_set():
            self._emit_new_events()
            self._detached.wait(_POLL_S)


class FollowingMonitor(TrainingMonitor):
    """The monitor of a run another process trains: one still going when the project was
    reopened (or, from `TrainingMenu.follow`, any run with a run folder)."""

    def __init__(self, project_root: Path, run: TrainingRun, parent=None) -> None:
        super().__init__(TrainingRequest(Path(project_root), resume_run_id=run.id), parent)
        self.followed = run
        self.run_id = run.id
        self.resumable = True            # Retry resumes it from its last checkpoint
        self.title.setText(f"<b>Run {run.id} ({run.name})</b> — trained by another process "
                           f"(a window closed with “keep training”, or the command line); "
                           f"followed from its run folder")
        self.setWindowTitle(f"Training — run {run.id}")

    def start(self) -> None:
        paused = self.followed is not None and self.followed.status == "paused"
        super().start()
        if paused:
            self.state.setText("paused (Resume continues it)")
            self._show_buttons(running=True, paused=True)

    def _make_worker(self):
        if self.followed is None:        # Retry: a normal supervised resume
            return super()._make_worker()
        worker = RunFollower(self.request.project_root, self.followed, self)
        self.followed = None
        return worker
