"""One background thread for every SAM job (load the model, embed a frame, track, correct):
jobs run in order, so the model is never used by two jobs at once, and the GUI thread only
runs the decoder on embeddings that are ready. Jobs are plain callables; results and errors
leave as signals. A running track stops at its next frame when `cancel()` is called; queued
embeddings are dropped by `drop_pending()`."""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from src.platform_support import lower_thread_priority

_STOP = object()


class SamWorker(QObject):
    done = pyqtSignal(str, object)          # job tag, result
    failed = pyqtSignal(str, object)        # job tag, exception
    progress = pyqtSignal(str, int, int)    # job tag, done, total
    finished = pyqtSignal()                 # the loop ended (shutdown)

    def __init__(self) -> None:
        super().__init__()
        self._jobs: queue.Queue = queue.Queue()
        self.cancel_event = threading.Event()
        self.busy_tag: str | None = None

    def submit(self, tag: str, job: Callable[["SamWorker"], Any]) -> None:
        self._jobs.put((tag, job))

    def cancel(self) -> None:
        """Stop the running job at its next check and drop the queued ones."""
        self.cancel_event.set()
        self.drop_pending()

    def drop_pending(self, prefix: str = "") -> None:
        kept = []
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP and not item[0].startswith(prefix):
                kept.append(item)
            elif item is _STOP:
                kept.append(item)
        for item in kept:
            self._jobs.put(item)

    def stop(self) -> None:
        self.cancel()
        self._jobs.put(_STOP)

    @pyqtSlot()
    def run(self) -> None:
        lower_thread_priority()     # clicks (GUI thread) first; before any torch call here
        while True:
            item = self._jobs.get()
            if item is _STOP:
                break
            tag, job = item
            self.cancel_event.clear()
            self.busy_tag = tag
            try:
                result = job(self)
            except Exception as exc:   # noqa: BLE001 - every failure leaves as a signal
                self.failed.emit(tag, exc)
            else:
                self.done.emit(tag, result)
            finally:
                self.busy_tag = None
        self.finished.emit()


def start_worker(parent: QObject) -> tuple[QThread, SamWorker]:
    thread = QThread(parent)
    thread.setObjectName("samWorker")
    worker = SamWorker()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    thread.start()
    return thread, worker
