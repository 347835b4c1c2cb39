"""Tiny YOLO datasets and configs for the YOLO trainer tests (imported by tests/training/test_yolo*.py).

Detect/segment: 64 px images, one red or blue rectangle each (class 0/1), labels in YOLO
format, data.yaml as the dataset builder writes it. Classify: ImageFolder train/val of
noisy solid colours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from src.training.config import ImbalanceSettings, LoraSettings, TrainConfig

CLASS_COLOURS = ((220, 40, 40), (40, 60, 220))   # red, blue
NAMES = {0: "red", 1: "blue"}


def write_yolo_dataset(root: Path, segment: bool = False, n_train: int = 12, n_val: int = 4,
                       size: int = 64, seed: int = 0) -> Path:
    """images/{train,val} + labels/{train,val} + data.yaml; returns the data.yaml path."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cls = i % 2
            img = (rng.normal(110, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
            w, h = (int(v) for v in rng.integers(size // 4, size // 2, 2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            img[y:y + h, x:x + w] = CLASS_COLOURS[cls]
            Image.fromarray(img).save(root / "images" / split / f"{split}{i}.png")
            x1, y1, x2, y2 = x / size, y / size, (x + w) / size, (y + h) / size
            line = (f"{cls} {x1} {y1} {x2} {y1} {x2} {y2} {x1} {y2}" if segment else
                    f"{cls} {(x1 + x2) / 2} {(y1 + y2) / 2} {x2 - x1} {y2 - y1}")
            (root / "labels" / split / f"{split}{i}.txt").write_text(line + "\n")
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({"path": str(root), "train": "images/train",
                                         "val": "images/val", "names": NAMES}))
    return data_yaml


def write_image_folder(root: Path, per_class: int = 4, n_val: int = 2, size: int = 32,
                       seed: int = 0) -> Path:
    """train/<class>/*.png and val/<class>/*.png for 2 colour classes; returns the root."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", n_val)):
        for cls, name in NAMES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.array(CLASS_COLOURS[cls], float) + rng.normal(0, 20, (size, size, 3))
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def yolo_config(task: str, *, epochs: int = 2, lora: bool = False, weights: str | None = None,
                train_head: bool = True, class_weights: bool = False,
                batch: int = 4) -> TrainConfig:
    """A CPU smoke-training config: 64 px (32 for classify), batch 4, a yaml-built yolov8n."""
    return TrainConfig(
        name=f"t-{task}", model_type="yolo", task=task, model="yolov8n", weights=weights,
        epochs=epochs, batch=batch, imgsz=32 if task == "classify" else 64, lr=0.002,
        optimizer="adamw", patience=0, seed=0, device="cpu", workers=0,
        lora=LoraSettings(enabled=lora, rank=4, alpha=8.0, train_head=train_head),
        imbalance=ImbalanceSettings(class_weights=class_weights), tensorboard=False)
