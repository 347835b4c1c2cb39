"""Fixtures of the inference tests: one tiny YOLO detector and one tiny timm crop
classifier, each trained once per session when first needed (yolov8n.yaml / timm
test_efficientnet from scratch, 64 and 32 px, 1 epoch), registered in each test's project
through the runner's own registration (files with sha256, trusted); and a short video of
a red and a blue square moving."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.db import datasets as datasets_repo
from src.db import runs as runs_repo
from src.db.records import DatasetRecord, TrainingRun
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.runner import register_model
from tests.training.yolo_fixtures import write_image_folder, write_yolo_dataset, yolo_config

VIDEO_SIZE = (96, 64)          # width, height
VIDEO_FRAMES = 24
RED, BLUE = (40, 40, 220), (220, 60, 40)   # BGR


def square_positions(i: int) -> dict[str, tuple[int, int, int, int]]:
    """Where the red and blue squares are on frame i: (x1, y1, x2, y2), x2/y2 excluded."""
    return {"red": (4 + i, 8, 20 + i, 24), "blue": (70 - i, 36, 86 - i, 52)}


def square_frame(i: int) -> np.ndarray:
    image = np.full((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), 110, np.uint8)
    for name, (x1, y1, x2, y2) in square_positions(i).items():
        image[y1:y2, x1:x2] = RED if name == "red" else BLUE
    return image


@pytest.fixture(scope="session")
def squares_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "squares.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, VIDEO_SIZE)
    for i in range(VIDEO_FRAMES):
        writer.write(square_frame(i))
    writer.release()
    return path


@pytest.fixture(scope="session")
def trained_detector(tmp_path_factory):
    """(cfg, outcome) of a yolov8n detector trained for 1 epoch on 64 px squares."""
    from src.training.yolo_trainer import train_yolo
    root = tmp_path_factory.mktemp("inference-detector")
    cfg = yolo_config("detect", epochs=1)
    outcome = train_yolo(cfg, write_yolo_dataset(root / "det"), root / "run", EventBus(),
                         RunControl(), base_dir=root / "no-base")
    assert outcome.status == "completed"
    return cfg, outcome


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory):
    """(cfg, outcome) of a timm test_efficientnet trained for 1 epoch on 32 px colours."""
    from src.training.config import TrainConfig
    from src.training.timm_trainer import train_timm
    root = tmp_path_factory.mktemp("inference-classifier")
    cfg = TrainConfig(name="crops-cls", model_type="timm", task="classify",
                      model="test_efficientnet", epochs=1, batch=4, imgsz=32, device="cpu",
                      workers=0, patience=0, tensorboard=False)
    outcome = train_timm(cfg, write_image_folder(root / "cls"), root / "run", EventBus(),
                         RunControl())
    assert outcome.status == "completed"
    return cfg, outcome


def register(project, cfg, outcome, dataset_task: str):
    """Register a trained model in `project` as the runner does after a training."""
    ds = datasets_repo.add_dataset(project.conn, DatasetRecord(
        name=f"ds-{dataset_task}", version=1, task=dataset_task, path="datasets/x"))
    run_dir = project.runs_dir / f"{cfg.name}-{ds.id}"
    shutil.copytree(Path(outcome.merged_model).parent, run_dir, dirs_exist_ok=True)
    run = runs_repo.add_run(project.conn, TrainingRun(
        name=cfg.name, task=cfg.task, model_type=cfg.model_type, dataset_id=ds.id,
        run_dir=project.relpath(run_dir), status="completed"))
    return register_model(project, project.conn, run, cfg, outcome)


@pytest.fixture
def detector(project, trained_detector):
    return register(project, *trained_detector, "detect")


@pytest.fixture
def crop_classifier(project, trained_classifier):
    return register(project, *trained_classifier, "crops")
