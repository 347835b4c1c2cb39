"""Corrected frames as detector training batches: letterbox, light augmentation, tensors.

A `DetectorSample` is one corrected frame: its BGR image and the accepted boxes (pixels,
xyxy) with the model's class indices. Training batches are letterboxed (long side `imgsz`,
short side rounded up to the stride: 320x240 frames train at 320x256, as ultralytics
predicts them) with a light, random augmentation (horizontal flip, brightness/contrast, a
little scale and shift), in the batch layout ultralytics' detection loss expects (`img`,
`batch_idx`, `cls`, normalised xywh `bboxes`). Validation uses the plain letterbox.

A segmentation sample also carries one polygon per box (pixels, (K, 2)); the letterbox and
the augmentation move the polygons with the boxes (segment_update.py rasterises them).
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import cv2
import numpy as np

PAD_VALUE = 114
MIN_KEEP = 0.4          # a box cut by the augmentation to less than this share is dropped


@dataclass
class DetectorSample:
    id: str
    image: np.ndarray            # BGR uint8
    boxes: np.ndarray            # (N, 4) float32 xyxy pixels
    classes: np.ndarray          # (N,) int64 model class indices
    polygons: list[np.ndarray] | None = None   # segmentation: (K, 2) pixels, one per box


@dataclass
class Letterboxed:
    image: np.ndarray            # canvas_shape() BGR
    boxes: np.ndarray            # (N, 4) xyxy in the letterboxed image
    classes: np.ndarray
    scale: float
    offset: tuple[float, float]  # (x, y) padding before the image
    polygons: list[np.ndarray] | None = None   # in the letterboxed image, one per box


def canvas_shape(image_hw: tuple[int, int], imgsz: int, stride: int = 32) -> tuple[int, int]:
    """(height, width) of the letterboxed image: the long side imgsz, the short side the
    image's, scaled, rounded up to the stride (what ultralytics' rect predict does)."""
    h, w = image_hw
    scale = imgsz / max(h, w)
    return (int(math.ceil(h * scale / stride) * stride),
            int(math.ceil(w * scale / stride) * stride))


def letterbox(sample: DetectorSample, imgsz: int, rng: np.random.Generator | None = None
              ) -> Letterboxed:
    """Fit the image in its canvas (ratio kept, grey padding); with `rng`, augment."""
    h, w = sample.image.shape[:2]
    ch, cw = canvas_shape((h, w), imgsz)
    scale = imgsz / max(h, w)
    if rng is not None:
        scale *= float(rng.uniform(0.8, 1.05))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if rng is None:
        ox, oy = (cw - nw) / 2, (ch - nh) / 2
    else:
        ox = float(rng.uniform(min(0, cw - nw), max(0, cw - nw)))
        oy = float(rng.uniform(min(0, ch - nh), max(0, ch - nh)))
    matrix = np.array([[scale, 0, ox], [0, scale, oy]], dtype=np.float32)
    canvas = cv2.warpAffine(sample.image, matrix, (cw, ch), flags=cv2.INTER_LINEAR,
                            borderValue=(PAD_VALUE,) * 3)
    boxes = sample.boxes.astype(np.float32) * scale + np.array([ox, oy, ox, oy], np.float32)
    keep = _kept(boxes, cw, ch)
    boxes = boxes.reshape(-1, 4)[keep].clip(0, [cw, ch, cw, ch]).astype(np.float32)
    classes = np.asarray(sample.classes).reshape(-1)[keep]
    polygons = None
    if sample.polygons is not None:
        polygons = [(np.asarray(p, np.float32) * scale + np.array([ox, oy], np.float32))
                    .clip(0, [cw, ch]) for p, k in zip(sample.polygons, keep) if k]
    if rng is not None:
        canvas, boxes, polygons = _photometric_and_flip(canvas, boxes, rng, polygons)
    return Letterboxed(canvas, boxes, classes, scale, (ox, oy), polygons)


def to_batch(items: list[Letterboxed]) -> dict:
    """The batch dict of ultralytics' detection loss (img in [0, 1], RGB, CHW)."""
    import torch

    images = np.stack([it.image[:, :, ::-1] for it in items]).transpose(0, 3, 1, 2)
    img = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    h, w = items[0].image.shape[:2]
    idx, cls, xywh = [], [], []
    for i, it in enumerate(items):
        b = it.boxes / np.array([w, h, w, h], np.float32)
        idx += [i] * len(b)
        cls += list(it.classes)
        xywh += [[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1] for x1, y1, x2, y2 in b]
    return {"img": img,
            "batch_idx": torch.tensor(idx, dtype=torch.float32),
            "cls": torch.tensor(cls, dtype=torch.float32).view(-1, 1),
            "bboxes": torch.tensor(xywh, dtype=torch.float32).view(-1, 4)}


def unletterbox(boxes: np.ndarray, item: Letterboxed) -> np.ndarray:
    """Boxes of the letterboxed image back in original-image pixels."""
    ox, oy = item.offset
    return (boxes - np.array([ox, oy, ox, oy], np.float32)) / item.scale


def _kept(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which boxes keep enough of themselves inside the canvas (bool per box)."""
    if not len(boxes):
        return np.zeros(0, bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = boxes.clip(0, [width, height, width, height])
    kept_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    return (kept_area > MIN_KEEP * np.maximum(area, 1e-6)) & (kept_area > 1.0)


def _photometric_and_flip(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                          polygons: list[np.ndarray] | None = None):
    contrast = float(rng.uniform(0.8, 1.2))
    brightness = float(rng.uniform(-20, 20))
    image = cv2.convertScaleAbs(image, alpha=contrast, beta=brightness)
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        size = image.shape[1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
        if polygons is not None:
            polygons = [np.column_stack([size - p[:, 0], p[:, 1]]) for p in polygons]
    return image, boxes, polygons
