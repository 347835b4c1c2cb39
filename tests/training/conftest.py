"""Tiny synthetic datasets for training tests, in the layouts the dataset builder writes.

classify: <root>/{train,val,test}/<class>/*.png + data.yaml (names); detect/segment:
<root>/data.yaml + images/{train,val}/*.png + labels/{train,val}/*.txt (YOLO format).
Images are solid colours with noise, so a classifier can learn them in an epoch or two.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220),
           "yellow": (230, 220, 40)}


def write_classify_dataset(root: Path, counts: dict[str, dict[str, int]], size: int = 32,
                           seed: int = 0) -> Path:
    """counts: split -> {class: n}; one noisy solid-colour square per image."""
    rng = np.random.default_rng(seed)
    names = sorted({c for per in counts.values() for c in per})
    for split, per_class in counts.items():
        for name, n in per_class.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.array(COLOURS[name], dtype=float)
                pixels = base + rng.normal(0, 25, (size, size, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    (root / "data.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "train",
                                                    "val": "val", "names": names}))
    return root


def write_detect_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64,
                         segment: bool = False, seed: int = 0) -> Path:
    """YOLO detect (or segment) dataset: one filled rectangle of class 0 or 1 per image."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((size, size, 3), 90, np.uint8)
            cls = i % 2
            w, h = rng.integers(size // 4, size // 2, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            img[y:y + h, x:x + w] = COLOURS["red" if cls == 0 else "blue"]
            Image.fromarray(img).save(root / "images" / split / f"{i}.png")
            x1, y1, x2, y2 = x / size, y / size, (x + w) / size, (y + h) / size
            if segment:
                line = f"{cls} {x1} {y1} {x2} {y1} {x2} {y2} {x1} {y2}"
            else:
                line = f"{cls} {(x1 + x2) / 2} {(y1 + y2) / 2} {x2 - x1} {y2 - y1}"
            (root / "labels" / split / f"{i}.txt").write_text(line + "\n")
    (root / "data.yaml").write_text(yaml.safe_dump({
        "path": str(root), "train": "images/train", "val": "images/val",
        "names": {0: "red", 1: "blue"}}))
    return root


@pytest.fixture(scope="session")
def classify_dataset(tmp_path_factory) -> Path:
    """3 classes, 12 train / 6 val / 3 test images of 32 px."""
    return write_classify_dataset(
        tmp_path_factory.mktemp("classify") / "ds",
        {"train": {"red": 4, "green": 4, "blue": 4}, "val": {"red": 2, "green": 2, "blue": 2},
         "test": {"red": 1, "green": 1, "blue": 1}})


@pytest.fixture(scope="session")
def binary_dataset(tmp_path_factory) -> Path:
    """2 classes (the 'view' classifier), 12 train / 6 val images."""
    return write_classify_dataset(
        tmp_path_factory.mktemp("binary") / "ds",
        {"train": {"red": 6, "blue": 6}, "val": {"red": 3, "blue": 3}})


@pytest.fixture(scope="session")
def detect_dataset(tmp_path_factory) -> Path:
    return write_detect_dataset(tmp_path_factory.mktemp("detect") / "ds") / "data.yaml"


@pytest.fixture(scope="session")
def segment_dataset(tmp_path_factory) -> Path:
    return write_detect_dataset(tmp_path_factory.mktemp("segment") / "ds",
                                segment=True) / "data.yaml"


REPO = Path(__file__).resolve().parents[2]
TINY = ["epochs=1", "batch=4", "imgsz=32", "workers=0", "device=cpu", "patience=0"]


@pytest.fixture(autouse=True)
def _isolated_train_lock(tmp_path, monkeypatch):
    """The machine-wide training lock lives in tmp_path, one per test."""
    monkeypatch.setenv("LABELLOOP_LOCK_DIR", str(tmp_path / "lock"))


@pytest.fixture
def make_cfg():
    """make_cfg('crop_classifier', 'epochs=2', ...) → a tiny TrainConfig from configs/."""
    from src.training.config import load_config

    def make(template: str = "crop_classifier", *overrides: str):
        return load_config(REPO / "configs" / f"{template}.yaml", [*TINY, *overrides])
    return make
