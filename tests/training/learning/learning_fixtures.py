"""A project for the learning-loop tests: an image-folder source whose frames show a red and
a blue square with their boxes accepted, and an untrained yolov8n (from its yaml, no
training: the tests exercise the loop, not detection quality) registered as a detect
version with its files' sha256 trusted, as a trained version would be. The segmentation
variants: a red triangle (a polygon) and a blue square (a box) per frame, an untrained
yolov8n-seg registered as a segment version."""
from __future__ import annotations

import json
from datetime import datetime

import cv2
import numpy as np
import torch

from src.data.capture import import_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import model_versions
from src.db.records import Annotation, ModelVersion
from src.training.models.manager import scan_files

SIZE = 64
RED, BLUE = (40, 40, 220), (220, 60, 40)   # BGR


def squares(i: int) -> dict[str, list[float]]:
    return {"red": [4 + 2 * i, 8, 24 + 2 * i, 28], "blue": [40 - i, 34, 60 - i, 56]}


def make_source(project, n_frames: int = 8, *, annotate: bool = True):
    """(source, frames) of an image folder of n_frames squares, boxes accepted."""
    folder = project.root.parent / "squares"
    folder.mkdir(exist_ok=True)
    for i in range(n_frames):
        image = np.full((SIZE, SIZE, 3), 110, np.uint8)
        for name, (x1, y1, x2, y2) in squares(i).items():
            image[int(y1):int(y2), int(x1):int(x2)] = RED if name == "red" else BLUE
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    source, frames = import_media(project, folder)
    frames = sorted(frames, key=lambda f: f.frame_index)
    if annotate:
        ids = {n: classes_repo.ensure_class(project.conn, n).id for n in ("red", "blue")}
        annotations_repo.add_annotations(project.conn, [
            Annotation(f.id, ids[name], "box", box, source="imported")
            for f in frames for name, box in squares(f.frame_index).items()])
    return source, frames


def triangle(i: int) -> list[list[float]]:
    return [[4.0 + 2 * i, 30.0], [16.0 + 2 * i, 6.0], [28.0 + 2 * i, 30.0]]


def make_polygon_source(project, n_frames: int = 8, *, annotate: bool = True):
    """(source, frames): a red triangle (accepted polygon) and a blue square (accepted box)."""
    folder = project.root.parent / "triangles"
    folder.mkdir(exist_ok=True)
    for i in range(n_frames):
        image = np.full((SIZE, SIZE, 3), 110, np.uint8)
        cv2.fillPoly(image, [np.round(np.array(triangle(i))).astype(np.int32)], RED)
        x1, y1, x2, y2 = squares(i)["blue"]
        image[int(y1):int(y2), int(x1):int(x2)] = BLUE
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    source, frames = import_media(project, folder)
    frames = sorted(frames, key=lambda f: f.frame_index)
    if annotate:
        ids = {n: classes_repo.ensure_class(project.conn, n).id for n in ("red", "blue")}
        annotations_repo.add_annotations(project.conn, [
            a for f in frames for a in (
                Annotation(f.id, ids["red"], "polygon", triangle(f.frame_index),
                           source="imported"),
                Annotation(f.id, ids["blue"], "box", squares(f.frame_index)["blue"],
                           source="imported"))])
    return source, frames


def make_seg_base(project, name: str = "tiny-seg", imgsz: int = SIZE) -> ModelVersion:
    """Register an untrained yolov8n-seg (2 classes), as make_base does a detector."""
    from ultralytics.nn.tasks import SegmentationModel

    torch.manual_seed(0)
    return _register(project, SegmentationModel("yolov8n-seg.yaml", nc=2, verbose=False),
                     "segment", name, imgsz)


def make_base(project, name: str = "tiny", imgsz: int = SIZE) -> ModelVersion:
    """Register an untrained yolov8n (2 classes) saved as ultralytics saves a checkpoint."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return _register(project, DetectionModel("yolov8n.yaml", nc=2, verbose=False), "detect",
                     name, imgsz)


def _register(project, model, task: str, name: str, imgsz: int) -> ModelVersion:
    model.names = {0: "red", 1: "blue"}
    folder = project.models_dir / task / name / "v1"
    folder.mkdir(parents=True)
    torch.save({"model": model.half(), "ema": None, "train_args": {"imgsz": imgsz,
                                                                   "task": task},
                "date": datetime.now().isoformat(), "version": "8"}, folder / "model.pt")
    (folder / "metadata.json").write_text(json.dumps({"config": {"imgsz": imgsz}}))
    files = scan_files(project, folder)
    for f in files:
        model_versions.add_trusted(project.conn, f.sha256, "model", str(project.abspath(f.path)))
    return model_versions.add_model_version(project.conn, ModelVersion(
        task=task, name=name, version=0, path=project.relpath(folder / "model.pt"),
        model_type="yolo", classes=["red", "blue"], is_active=True), files)
