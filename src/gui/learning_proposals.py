"""The learning loop's proposals off the GUI thread: a worker predicts with the session's
model (building it the first time: loading the base, merging the adapter, seconds) on its
own store connection and stores nothing; the GUI thread stores what it found when it ends
(src/gui/learning_loop.py decides where). One job at a time (`ProposalJobs`)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from src.gui.workers import start_in_thread


@dataclass(frozen=True)
class ProposalRequest:
    frame_id: int
    auto: bool       # asked by showing an empty frame (not Learn › Propose on this frame)


class ProposalWorker(QObject):
    """`learner.predict([frame id])` in the worker's thread (LearningSession.predict reads
    the store on a connection of its own)."""
    finished = pyqtSignal(object)            # ProposalBatch
    failed = pyqtSignal(object)              # exception

    def __init__(self, learner, request: ProposalRequest) -> None:
        super().__init__()
        self.learner, self.request = learner, request
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Skip the prediction when it has not started yet (any thread may call this)."""
        self._stop.set()

    @pyqtSlot()         # a real slot, so `started` calls it in the worker's thread
    def run(self) -> None:
        try:
            batch = self.learner.predict([self.request.frame_id], should_stop=self._stop.is_set)
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(batch)


class ProposalJobs(QObject):
    """Runs one ProposalWorker at a time. `ended(request, batch, error)` comes once its
    thread has finished (so `running` is already False there): batch None on failure, error
    None on success. A job stopped by `shutdown` never reports."""
    ended = pyqtSignal(object, object, object)

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._job: Optional[tuple[QThread, ProposalWorker]] = None
        self._outcome: tuple = (None, None)
        self._generation = 0         # bumped by shutdown: a stopped job's signals are dropped

    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, learner, request: ProposalRequest) -> None:
        if self._job is not None:
            raise RuntimeError("a proposal job is already running")
        worker = ProposalWorker(learner, request)
        generation = self._generation
        self._outcome = (None, None)
        worker.finished.connect(lambda batch: self._on_worker_reported(generation, batch, None))
        worker.failed.connect(lambda exc: self._on_worker_reported(generation, None, exc))
        thread = start_in_thread(worker, self)
        thread.setObjectName("learningProposalThread")
        thread.finished.connect(lambda: self._on_thread_finished(generation))
        self._job = (thread, worker)

    def shutdown(self) -> None:
        """Stop the running job, if any, and wait for its thread (the session or project
        closes); what it found is dropped."""
        self._generation += 1
        if self._job is not None:
            thread, worker = self._job
            worker.cancel()
            thread.wait()
            self._job = None

    def _on_worker_reported(self, generation: int, batch, error) -> None:
        if generation == self._generation:
            self._outcome = (batch, error)

    def _on_thread_finished(self, generation: int) -> None:
        if generation != self._generation or self._job is None:
            return
        _thread, worker = self._job
        self._job = None
        batch, error = self._outcome
        self.ended.emit(worker.request, batch, error)
