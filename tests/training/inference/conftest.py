"""Fixtures of the inference tests: one tiny YOLO detector and one tiny timm crop
classifier trained once per session (yolov8n.yaml / test_efficientnet from scratch, 64 and
32 px, 1 epoch), registered in each test's project through the runner's own registration
(files with sha256, trusted); and a short video of a red and a blue square moving."""
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
def trained(tmp_path_factory) -> dict:
    """{'detect': (cfg, outcome), 'crops': (cfg, outcome)} trained once."""
    from src.training.config import TrainConfig
    from src.training.timm_trainer import train_timm
    from src.training.yolo_trainer import train_yolo
    root = tmp_path_factory.mktemp("inference-models")
    det_cfg = yolo_config("detect", epochs=1)
    det = train_yolo(det_cfg, write_yolo_dataset(root / "det"), root / "det-run", EventBus(),
                     RunControl(), base_dir=root / "no-base")
    cls_cfg = TrainConfig(name="crops-cls", model_type="timm", task="classify",
                          model="test_efficientnet", epochs=1, batch=4, imgsz=32, device="cpu",
                          workers=0, patience=0, tensorboard=False)
    cls = train_timm(cls_cfg, write_image_folder(root / "cls"), root / "cls-run", EventBus(),
                     RunControl())
    assert det.status == cls.status == "completed"
    return {"detect": (det_cfg, det), "crops": (cls_cfg, cls)}


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
def detector(project, trained):
    cfg, outcome = trained["detect"]
    return register(project, cfg, outcome, "detect")


@pytest.fixture
def crop_classifier(project, trained):
    cfg, outcome = trained["crops"]
    return register(project, cfg, outcome, "crops")
