"""A mask → a simplified polygon in original-frame pixels."""
from __future__ import annotations

import cv2
import numpy as np

DEFAULT_TOLERANCE = 1.5     # pixels: the Douglas-Peucker epsilon


def mask_to_polygon(mask: np.ndarray, tolerance: float = DEFAULT_TOLERANCE
                    ) -> list[list[float]] | None:
    """The largest outer contour of `mask` (bool HxW, original pixels), simplified so that no
    point of the contour is farther than `tolerance` pixels; None when there is no shape."""
    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    biggest = max(contours, key=cv2.contourArea)
    approx = cv2.approxPolyDP(biggest, max(0.0, float(tolerance)), True)
    if len(approx) < 3:
        return None
    return [[float(x), float(y)] for x, y in approx[:, 0, :]]


def polygon_to_mask(polygon: list[list[float]], height: int, width: int) -> np.ndarray:
    """Fill a polygon (original pixels) into a bool mask (tests and IoU checks)."""
    out = np.zeros((height, width), np.uint8)
    cv2.fillPoly(out, [np.round(np.asarray(polygon)).astype(np.int32)], 1)
    return out.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> float:
    """Intersection over union of two masks; `empty` when both are empty."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else empty
