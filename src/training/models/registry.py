"""Registering a trained model: its readable name, files with sha256, lineage, classes."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from src.db import datasets as datasets_repo
from src.db import model_versions as repo
from src.db.project import Project
from src.db.records import ModelVersion, TrainingRun
from src.training import trust
from src.training.models.manager import scan_files

# the metric a version's readable name shows, per task: (metric key, short name)
_NAME_METRICS = (("metrics/mAP50-95(M)", "mAP50-95"), ("metrics/mAP50-95(B)", "mAP50-95"),
                 ("metrics/accuracy_top1", "top1"), ("balanced_accuracy", "bacc"),
                 ("accuracy", "acc"))


def model_task(cfg_task: str, dataset_task: str | None) -> str:
    """A classifier trained on a crops dataset is the two-stage pipeline's crop classifier."""
    return "crop_classifier" if cfg_task == "classify" and dataset_task == "crops" else cfg_task


def readable_name(task: str, metrics: dict, when: datetime | None = None) -> str:
    """'<task>-<YYYYmmdd-HHMMSS>-<metric>=<value>', e.g. detect-20261203-101500-mAP50-95=0.412."""
    when = when or datetime.now(timezone.utc)
    stamp = when.strftime("%Y%m%d-%H%M%S")
    for key, short in _NAME_METRICS:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return f"{task}-{stamp}-{short}={value:.3f}"
    return f"{task}-{stamp}"


def trained_classes(cfg_task: str, outcome) -> list[str]:
    """The model's class names in index order (a detection confusion matrix's extra
    'background' row is not a class)."""
    names = list(outcome.metrics.get("class_names") or [])
    if cfg_task in ("detect", "segment") and names[-1:] == ["background"] and \
            len(names) == len(outcome.metrics.get("confusion_matrix") or []):
        names = names[:-1]
    return [str(n) for n in names]


def parent_of(project: Project, conn: sqlite3.Connection,
              weights: str | None) -> ModelVersion | None:
    """The registered version a training started from: 'model:<id>', or a file whose
    content is a registered version's weights."""
    if not weights:
        return None
    if weights.startswith("model:"):
        ident = weights[len("model:"):]
        return repo.get_model_version(conn, int(ident)) if ident.isdigit() else None
    path = Path(weights).expanduser()
    if not path.is_file():
        return None
    for version_id in repo.versions_with_file(conn, trust.sha256_file(path)):
        return repo.get_model_version(conn, version_id)
    return None


def lineage_entry(version: ModelVersion) -> dict:
    weights = next((f.sha256 for f in version.files if f.role == "weights"), None)
    return {"display_name": version.display_name, "task": version.task,
            "created_at": version.created_at, "weights_sha256": weights}


def record_trained_version(project: Project, conn: sqlite3.Connection, run: TrainingRun,
                           cfg, folder: Path, weights: Path, metrics: dict,
                           classes: list[str]) -> ModelVersion:
    """Register the files copied into `folder` (their sha256s become trusted) as a version
    of `run`; it becomes the task's active model when the task has none."""
    dataset = datasets_repo.get_dataset_by_id(conn, run.dataset_id) if run.dataset_id else None
    task = model_task(cfg.task, dataset.task if dataset else None)
    parent = parent_of(project, conn, cfg.weights)
    lineage = [lineage_entry(parent), *parent.lineage] if parent else []
    files = scan_files(project, folder)
    for f in files:
        repo.add_trusted(conn, f.sha256, "model", str(project.abspath(f.path)))
    stored = run.config.get("_dataset", {})
    version = repo.add_model_version(conn, ModelVersion(
        task=task, name=cfg.name, version=0, run_id=run.id,
        path=project.relpath(weights), format=weights.suffix.lstrip("."), metrics=metrics,
        is_active=repo.active_model(conn, task) is None,
        display_name=readable_name(task, metrics), model_type=cfg.model_type,
        classes=list(classes), dataset_id=run.dataset_id,
        dataset={k: stored.get(k) for k in ("name", "version", "hash", "path")},
        parent_id=parent.id if parent else None, lineage=lineage), files)
    return version
