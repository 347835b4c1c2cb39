"""The dataset dialog's background jobs: building a snapshot and drawing the augmentation
preview. Each opens its own store connection and reports through signals only."""
from __future__ import annotations

import json
from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from src.data import augment as augment_mod
from src.data.datasets import DatasetSpec, build_dataset
from src.db import dataset_exclusions
from src.db.project import Project


class BuildWorker(QObject):
    """Builds `spec` into the project; reports progress, then the record and its report."""
    progress = pyqtSignal(str, int, int)     # stage ('write' | 'augment'), done, total (0: ?)
    finished = pyqtSignal(object, object)    # DatasetRecord, report (dict)
    failed = pyqtSignal(object)              # exception

    def __init__(self, project_root: Path, spec: DatasetSpec) -> None:
        super().__init__()
        self.project_root, self.spec = project_root, spec

    @pyqtSlot()
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                record, path = build_dataset(project, self.spec, progress=self._on_progress)
                report = json.loads((path / "report.json").read_text(encoding="utf-8"))
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (shown)
            self.failed.emit(exc)
            return
        self.finished.emit(record, report)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.emit(stage, done, total)


class PreviewWorker(QObject):
    """The preview frame through the pipeline N times, shapes drawn (BGR arrays)."""
    finished = pyqtSignal(object, object)    # PreviewSample | None, list of images
    failed = pyqtSignal(object)

    def __init__(self, project_root: Path, frame_ids, prefer: int | None, pipeline: str,
                 n: int, seed: int) -> None:
        super().__init__()
        self.project_root, self.frame_ids, self.prefer = project_root, frame_ids, prefer
        self.pipeline, self.n, self.seed = pipeline, n, seed

    @pyqtSlot()
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                skip = dataset_exclusions.excluded_frame_ids(project.conn)
                sample = augment_mod.preview_sample(project, self.frame_ids,
                                                    prefer=self.prefer, skip=skip)
            images = [] if sample is None else augment_mod.variants(
                sample, self.n, pipeline=self.pipeline, seed=self.seed)
        except Exception as exc:   # noqa: BLE001
            self.failed.emit(exc)
            return
        self.finished.emit(sample, images)
