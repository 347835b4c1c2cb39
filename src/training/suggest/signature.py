"""Near-duplicate frames: a small grayscale signature per frame and a distance between two.

The signature is the frame in grayscale, area-averaged down to 32 x 24 cells (about 10 x 10
pixels of a 320 x 240 frame). The distance is the mean absolute difference of two signatures,
in grey levels (0-255). Measured on the demo video (benchmarks/suggest.py repeats it):

    re-encoding a frame as JPEG (quality 80)    0.1
    the next frame (15 fps, objects move 2 px)  0.5 (median)
    2 frames apart                              0.9
    5 frames apart                              2.0
    10 frames apart                             3.5
    unrelated frames of the same scene          ~5.5
    day vs night lighting                       134

NEAR_DUPLICATE = 1.0 grey level sits an order of magnitude above codec noise and below
what 5 frames of motion change: a frame this close to a labelled one shows the same objects
within a couple of pixels, so labelling it teaches the model almost nothing new.
"""
from __future__ import annotations

import cv2
import numpy as np

SIGNATURE_SIZE = (32, 24)          # (width, height) in cells
NEAR_DUPLICATE = 1.0               # grey levels of mean absolute difference


def frame_signature(image: np.ndarray) -> np.ndarray:
    """The 24 x 32 float32 grayscale signature of a BGR (or grayscale) uint8 image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures, in grey levels."""
    return float(np.abs(a - b).mean())


def nearest_distance(signature: np.ndarray, others: list[np.ndarray]) -> float:
    """The distance to the closest of `others` (infinity when there are none)."""
    if not others:
        return float("inf")
    stack = np.stack(others)
    return float(np.abs(stack - signature[None]).mean(axis=(1, 2)).min())


def is_near_duplicate(signature: np.ndarray, others: list[np.ndarray],
                      threshold: float = NEAR_DUPLICATE) -> bool:
    return nearest_distance(signature, others) <= threshold
