"""One background job of assisted labeling (pre-label or propagate), off the GUI thread.

The job runs on its own store connection (a connection belongs to one thread) and stops
cooperatively between batches when cancelled; what it stored before stopping stays.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from src.db.project import Project
from src.training.inference.run import Progress, ShouldStop, StoreSummary

Job = Callable[[Project, Progress, ShouldStop], StoreSummary]


class AssistWorker(QObject):
    progress = pyqtSignal(int, int)          # frames done, frames in all
    finished = pyqtSignal(object)            # StoreSummary
    failed = pyqtSignal(object)              # exception

    def __init__(self, project_root: Path, job: Job) -> None:
        super().__init__()
        self.project_root = project_root
        self.job = job
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop after the batch it is on (any thread may call this)."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @pyqtSlot()         # a real slot, so `started` calls it in the worker's thread
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                summary = self.job(project, self.progress.emit, self._stop.is_set)
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(summary)
