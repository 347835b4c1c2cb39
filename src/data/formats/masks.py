"""COCO run-length masks: decoded (both the compressed `counts` string and the plain list)
and traced into polygons, since the store holds boxes and polygons, not bitmaps.

The decoder is ours, not pycocotools': its C decoder (maskApi.c rleDecode) writes as many
pixels as the counts say, whatever the mask size, so a hostile file could write past the
buffer. Here the counts are checked against `size` before any pixel is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.data import limits
from src.data.geometry import Polygon
from src.errors import DatasetError

# Douglas-Peucker tolerance, pixels: drops the staircase points of a traced edge while
# keeping the outline within half a pixel of the mask's.
SIMPLIFY_PX = 0.5


@dataclass
class Traced:
    """The polygons of one mask, and what tracing changed (for the import summary)."""
    polygons: list[Polygon]
    holes_filled: int = 0
    thin: int = 0                 # one-pixel-wide regions, traced as their bounding rectangle
    empty: bool = False


def decode_rle(segmentation: dict, path: Path, where: str,
               image_size: tuple[int, int] | None = None) -> np.ndarray:
    """The (height, width) uint8 mask of a COCO RLE `{"size": [h, w], "counts": ...}`;
    `image_size` (width, height), when given, must be the mask's (checked before decoding)."""
    size = segmentation.get("size")
    if not (isinstance(size, list) and len(size) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise DatasetError(f"an RLE mask needs size [height, width], got {size!r}"[:200],
                           path=path, field=f"{where}.size")
    height, width = size
    if image_size is not None and image_size != (width, height):
        raise DatasetError(f"the mask is {width}x{height} but its image is"
                           f" {image_size[0]}x{image_size[1]}", path=path, field=f"{where}.size")
    if height * width > limits.IMAGE_PIXELS.value():
        raise DatasetError(f"mask too large: {limits.IMAGE_PIXELS.exceeded(height * width)}",
                           path=path, field=f"{where}.size")
    counts = segmentation.get("counts")
    if isinstance(counts, str):
        runs = counts_from_string(counts, path, f"{where}.counts")
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                          for v in counts):
        runs = counts
    else:
        raise DatasetError("RLE counts must be a string or a list of integers", path=path,
                           field=f"{where}.counts")
    if any(v < 0 for v in runs) or sum(runs) != height * width:
        raise DatasetError(f"RLE counts cover {sum(runs)} pixels with negative runs or not"
                           f" the {height}x{width} = {height * width} of the mask", path=path,
                           field=f"{where}.counts", hint="re-export the masks")
    values = np.arange(len(runs), dtype=np.int64) % 2        # runs alternate 0, 1, 0...
    flat = np.repeat(values.astype(np.uint8), runs)
    return np.ascontiguousarray(flat.reshape(width, height).T)   # column-major, as COCO


def counts_from_string(text: str, path: Path, where: str) -> list[int]:
    """COCO's compressed counts: each run is 6-bit groups offset by 48 ('0'), 5 bits of value
    and a continuation bit, the last group's bit 4 giving the sign; from the third run on,
    each is stored as the difference with the run two before (maskApi.c rleFrString)."""
    runs: list[int] = []
    value = shift = 0
    for pos, char in enumerate(text):
        group = ord(char) - 48
        if not 0 <= group < 64:
            raise DatasetError(f"character {pos} ({char!r}) cannot be in compressed RLE counts",
                               path=path, field=where)
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value = shift = 0
    if shift:
        raise DatasetError("compressed RLE counts end in the middle of a number", path=path,
                           field=where)
    return runs


def mask_to_polygons(mask: np.ndarray) -> Traced:
    """One polygon per connected region of `mask`, along the outer edges of its pixels (a
    pixel spans [x, x+1]); holes are filled, since a polygon here has none, and counted."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
    traced = Traced([])
    traced.empty = not contours
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0] if contours else []):
        if parent >= 0:
            traced.holes_filled += 1
            continue
        points = cv2.approxPolyDP(contour, SIMPLIFY_PX, True).reshape(-1, 2).astype(float)
        if len(points) < 3 or _signed_area(points) == 0:    # one pixel wide: no inside
            x, y, w, h = cv2.boundingRect(contour)
            outline = np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], float)
            traced.thin += 1
        else:
            outline = _to_pixel_edges(points + 0.5)
        traced.polygons.append(Polygon(tuple((float(x), float(y)) for x, y in outline)))
    return traced


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _to_pixel_edges(points: np.ndarray, d: float = 0.5) -> np.ndarray:
    """The traced outline runs through the centres of the boundary pixels: move each
    vertex out by half a pixel along the mitre of its two edges, so a w-pixel-wide region
    becomes w wide, not w - 1 (a 90-degree corner moves exactly onto the pixel's corner)."""
    edges = np.roll(points, -1, axis=0) - points
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    if _signed_area(points) < 0:
        normals = -normals
    before = np.roll(normals, 1, axis=0)           # the normal of the edge ending here
    dot = np.sum(before * normals, axis=1, keepdims=True)
    return points + d * (before + normals) / np.maximum(1 + dot, 0.25)
