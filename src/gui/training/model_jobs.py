"""Model-version work that takes long (re-evaluating for a comparison, exporting, importing,
hashing files to trust them) off the GUI thread. One worker runs one call on a ModelManager
of its own store connection and reports through signals only."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from src.db.project import Project
from src.gui.workers import start_in_thread
from src.training.models import ModelManager

Report = Callable[[int, int, str], None]
Job = Callable[[ModelManager, Report], object]


class ModelJob(QObject):
    """Runs `job(manager, report)` in its thread; `report(done, total, text)` → progress."""
    progress = pyqtSignal(int, int, str)
    finished = pyqtSignal(object)            # what the job returned
    failed = pyqtSignal(object)              # the exception

    def __init__(self, project_root: Path, title: str, job: Job) -> None:
        super().__init__()
        self.project_root, self.title, self._job = Path(project_root), title, job

    @pyqtSlot()
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                result = self._job(ModelManager(project), self.progress.emit)
        except Exception as exc:  # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(result)


def compare_job(ids: list[int]) -> Job:
    def run(manager: ModelManager, report: Report):
        from src.training.models.compare import compare_versions
        return compare_versions(manager, [str(i) for i in ids], on_progress=report)
    return run


def export_job(version_id: int, fmt: str, target: Path) -> Job:
    def run(manager: ModelManager, report: Report):
        from src.training.models.export import export_version
        report(0, 0, f"exporting to {target.name}…")
        return export_version(manager, manager.get(version_id), fmt, target)
    return run


def import_job(path: Path, task: str | None) -> Job:
    def run(manager: ModelManager, report: Report):
        from src.training.models.bundle import import_model
        report(0, 0, f"importing {path.name} (checking every file)…")
        return import_model(manager, path, task=task, trusted=False)
    return run


def trust_job(version_id: int) -> Job:
    def run(manager: ModelManager, report: Report):
        report(0, 0, "checking the files and recording them as trusted…")
        return manager.trust(version_id)
    return run


def start_job(job: ModelJob, parent: QObject) -> QThread:
    return start_in_thread(job, parent)
