"""Helpers of the format tests: image files and project snapshots to compare against."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo


def write_image(path: Path, width: int, height: int, seed: int) -> None:
    """A noise PNG whose bytes differ for every seed (tests match images by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_state(project) -> tuple:
    """Everything an import could change: rows of every table it writes, and frames/ files."""
    files = sorted(p.relative_to(project.root).as_posix()
                   for p in project.frames_dir.rglob("*")) if project.frames_dir.exists() else []
    return (sources_repo.list_sources(project.conn), frames_repo.list_frames(project.conn),
            classes_repo.list_classes(project.conn),
            annotations_repo.list_annotations(project.conn), files)

