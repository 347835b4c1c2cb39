"""The demo's second half: build a detection dataset from the demo project and train on it.

`python main.py demo` calls this after building the demo project so a newcomer sees the
whole loop (annotations -> dataset snapshot -> training -> registered model) in minutes.
"""
from __future__ import annotations

import json
from pathlib import Path

from src.data.datasets.builder import build_dataset
from src.data.datasets.spec import DatasetSpec
from src.db.project import REPO_ROOT, Project
from src.db.records import TrainingRun
from src.training.config import load_config
from src.training.events import EventBus
from src.training.runner import start_training

DATASET = "demo-det"
CLASSES = ["square", "circle", "triangle"]
# The triangle is in ~1 of 5 training images (5% of the objects): repeat-factor sampling
# with threshold 1 draws those images sqrt(1 / 0.2) ~ 2.2 times per epoch. Without it the
# detector never finds the triangle in the demo's budget (benchmarks/demo_rare.py).
REPEAT_FACTOR_THRESHOLD = 1.0
EPOCHS = 20
# No mosaic: at 160 px a 4-frame mosaic halves every frame, the triangle to ~7 px, and a
# from-scratch nano model does not learn it within the demo's few epochs.
TRAINING = ("batch=16", "workers=0", "log_images_every=4", "mosaic=0.0")


def train_demo_detector(project: Project, *, epochs: int = EPOCHS, imgsz: int = 160,
                        bus: EventBus | None = None,
                        repeat_factor_threshold: float = REPEAT_FACTOR_THRESHOLD,
                        overrides: list[str] | tuple[str, ...] = ()) -> tuple[TrainingRun, dict]:
    """Build `demo-det` (detect) and train a small YOLO on it; returns the run and its metrics,
    overall and per class ('triangle/recall'...). `overrides`: more key=value settings."""
    record, _ = build_dataset(project, DatasetSpec(name=DATASET, task="detect", classes=CLASSES))
    cfg = load_config(REPO_ROOT / "configs" / "detection.yaml", [
        "name=demo-detector", f"epochs={epochs}", f"imgsz={imgsz}", f"patience={epochs}",
        *TRAINING, f"imbalance.repeat_factor_threshold={repeat_factor_threshold}", *overrides])
    run = start_training(project, cfg, f"{DATASET}:v{record.version}", bus=bus)
    metadata = project.abspath(run.run_dir) / "metadata.json" if run.run_dir else None
    metrics = {}
    if metadata is not None and metadata.exists():
        stored = json.loads(Path(metadata).read_text())
        metrics = dict(stored.get("metrics", {}))
        for name, row in stored.get("per_class", {}).items():   # the rare class's figures
            metrics.update({f"{name}/{key}": row[key] for key in ("recall", "mAP50")
                            if key in row})
    return run, metrics
