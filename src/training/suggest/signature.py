"""Near-duplicate frames: a small grayscale signature per frame and a distance between two.

The signature is the frame in grayscale, area-averaged down to 32 x 24 cells (about 10 x 10
pixels of a 320 x 240 frame). The distance of two signatures is their mean absolute
difference divided by their contrast (the mean of their standard deviations, at least
MIN_CONTRAST grey levels): the same motion changes a dim frame by fewer grey levels than a
bright one, and a fixed grey-level threshold called every frame of the demo's night half a
near-duplicate of the others. Measured on the demo video (median over each half;
benchmarks/suggest.py prints them):

                                         day (contrast 17)   night (contrast 7.8)
    the next frame (objects move ~2 px)       0.030               0.021
    3 frames apart                            0.076               0.051
    5 frames apart                            0.119               0.078
    10 frames apart                           0.202               0.131
    unrelated frames of the same scene        0.33                0.22
    re-encoded as JPEG quality 70             -                   0.024
    day vs night                              10.5

NEAR_DUPLICATE = 0.06 is about 2-3 frames of motion in either half, above codec noise:
a frame this close to a labelled one shows the same objects within a few pixels, so
labelling it teaches the model almost nothing new.
"""
from __future__ import annotations

import cv2
import numpy as np

SIGNATURE_SIZE = (32, 24)          # (width, height) in cells
NEAR_DUPLICATE = 0.06              # mean absolute difference / contrast
MIN_CONTRAST = 8.0                 # grey levels: flatter frames are compared as if this


def frame_signature(image: np.ndarray) -> np.ndarray:
    """The 24 x 32 float32 grayscale signature of a BGR (or grayscale) uint8 image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures over their contrast."""
    return nearest_distance(a, [b])


def nearest_distance(signature: np.ndarray, others: list[np.ndarray]) -> float:
    """The distance to the closest of `others` (infinity when there are none)."""
    if not others:
        return float("inf")
    stack = np.stack(others)
    contrast = np.maximum((stack.std(axis=(1, 2)) + signature.std()) / 2, MIN_CONTRAST)
    return float((np.abs(stack - signature[None]).mean(axis=(1, 2)) / contrast).min())


def is_near_duplicate(signature: np.ndarray, others: list[np.ndarray],
                      threshold: float = NEAR_DUPLICATE) -> bool:
    return nearest_distance(signature, others) <= threshold
