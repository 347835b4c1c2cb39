"""Fixtures of the SAM tests: SAM 2 tiny (and MobileSAM) built by ultralytics without weights
(explicitly `untrained=True`) at 128 px input, once per session; a short video of a moving
square registered in a project.

An untrained SAM 2 scores every object as absent (its object-score head is random), so
tracking would return only empty masks, and its mask logits hover just below 0;
`present_engine` raises that head's bias and lowers ultralytics' `mask_threshold` so that
the tracking, storing and learning paths run on non-empty masks. Everything else is the
untrained model as built.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.data.capture import import_media
from src.training.sam.embeddings import EmbeddingCache
from src.training.sam.engine import SamEngine
from src.training.sam.weights import find_weights

TEST_IMGSZ = 128
VIDEO_SIZE = (96, 64)          # width, height
VIDEO_FRAMES = 12


def square_box(i: int) -> tuple[int, int, int, int]:
    """The square on frame i: (x1, y1, x2, y2), x2/y2 excluded."""
    return (10 + 2 * i, 16, 34 + 2 * i, 40)


def square_frame(i: int) -> np.ndarray:
    image = np.full((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), 100, np.uint8)
    x1, y1, x2, y2 = square_box(i)
    image[y1:y2, x1:x2] = (40, 40, 220)
    return image


def square_mask(i: int) -> np.ndarray:
    mask = np.zeros((VIDEO_SIZE[1], VIDEO_SIZE[0]), bool)
    x1, y1, x2, y2 = square_box(i)
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture(scope="session")
def sam2_engine() -> SamEngine:
    torch.manual_seed(0)
    return SamEngine.load(find_weights("sam2_t", Path("/nonexistent"), untrained=True),
                          image_size=TEST_IMGSZ)


@pytest.fixture(scope="session")
def present_engine() -> SamEngine:
    """SAM 2 tiny, untrained, whose object-score head says 'present' (see module doc)."""
    torch.manual_seed(1)
    engine = SamEngine.load(find_weights("sam2_t", Path("/nonexistent"), untrained=True),
                            image_size=TEST_IMGSZ)
    with torch.no_grad():
        engine.model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(20.0)
    engine.model.mask_threshold = -0.15
    return engine


@pytest.fixture(scope="session")
def squares_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sam-video") / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, VIDEO_SIZE)
    for i in range(VIDEO_FRAMES):
        writer.write(square_frame(i))
    writer.release()
    return path


@pytest.fixture
def square_source(project, squares_video):
    source, _ = import_media(project, squares_video)
    return source


@pytest.fixture(scope="session")
def shared_embeddings(tmp_path_factory, present_engine) -> Path:
    """A disk cache folder with every frame of the video embedded once per session."""
    folder = tmp_path_factory.mktemp("sam-cache")
    cache = EmbeddingCache(present_engine, folder)
    for i in range(VIDEO_FRAMES):
        cache.get_or_compute(1, i, lambda i=i: square_frame(i))
    return folder
