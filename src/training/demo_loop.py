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


def train_demo_detector(project: Project, *, epochs: int = 25, imgsz: int = 160,
                        bus: EventBus | None = None) -> tuple[TrainingRun, dict]:
    """Build `demo-det` (detect) and train a small YOLO on it; returns the run and its metrics."""
    record, _ = build_dataset(project, DatasetSpec(name=DATASET, task="detect", classes=CLASSES))
    cfg = load_config(REPO_ROOT / "configs" / "detection.yaml", [
        "name=demo-detector", f"epochs={epochs}", f"imgsz={imgsz}", "batch=16", "workers=0",
        f"patience={epochs}", "log_images_every=4"])
    run = start_training(project, cfg, f"{DATASET}:v{record.version}", bus=bus)
    metadata = project.abspath(run.run_dir) / "metadata.json" if run.run_dir else None
    metrics = {}
    if metadata is not None and metadata.exists():
        metrics = json.loads(Path(metadata).read_text()).get("metrics", {})
    return run, metrics
