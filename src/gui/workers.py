"""Long jobs off the GUI thread. Each worker reports through signals only (never touches a
widget) and opens its own store connection (a connection belongs to one thread)."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

from src.data.capture import import_media
from src.db.project import Project


class ImportWorker(QObject):
    """Registers a video or imports an image folder (every image captured)."""
    finished = pyqtSignal(object, int)       # MediaSource, number of frames captured
    failed = pyqtSignal(object)              # exception

    def __init__(self, project_root: Path, media_path: Path) -> None:
        super().__init__()
        self.project_root = project_root
        self.media_path = media_path

    @pyqtSlot()         # a real slot, so `started` calls it in the worker's thread
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                source, frames = import_media(project, self.media_path)
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(source, len(frames))


def start_in_thread(worker: QObject, parent: QObject) -> QThread:
    """Run `worker.run` in a new QThread that ends when the worker reports. The caller keeps
    the (parentless) worker referenced; Python frees it, so a signal someone still holds
    never points at a deleted object."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # quit in the worker's thread (QThread.quit is thread-safe): queued to the GUI thread, a
    # `thread.wait()` there (a project closing mid-job) would wait for itself forever
    for signal in (worker.finished, worker.failed):
        signal.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
