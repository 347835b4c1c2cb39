"""COCO RLE import: our decoder against pycocotools' and how faithful the traced polygons are.

Random 640x480 object masks (ellipses and rotated rectangles, some with a hole) are encoded by
pycocotools (compressed counts). Then, in the same process:
  decode     ours (src/data/formats/masks.decode_rle, bounds-checked, pure Python + numpy)
             vs pycocotools.mask.decode (C): time per mask, ratio
  trace      mask_to_polygons: time per mask, vertices per polygon
  fidelity   IoU of the mask with its polygons rasterized back by pycocotools, for masks
             without holes; with a hole, IoU against the mask with the hole filled
Target: IoU >= 0.95 at COCO object sizes; decode + trace well under the JSON parse per mask.

    .venv/bin/python benchmarks/coco_masks.py [--masks 300] [--seed 0]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from pycocotools import mask as mask_util  # noqa: E402

from src.data.formats.masks import decode_rle, mask_to_polygons  # noqa: E402

W, H = 640, 480


def random_mask(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(mask, mask with its hole filled): an ellipse or a rotated rectangle, 20..200 px."""
    mask = np.zeros((H, W), np.uint8)
    cx, cy = int(rng.integers(120, W - 120)), int(rng.integers(120, H - 120))
    a, b = int(rng.integers(10, 100)), int(rng.integers(10, 100))
    angle = float(rng.uniform(0, 180))
    if rng.random() < 0.5:
        cv2.ellipse(mask, (cx, cy), (a, b), angle, 0, 360, 1, -1)
    else:
        box = cv2.boxPoints(((cx, cy), (2 * a, 2 * b), angle)).astype(np.int32)
        cv2.fillPoly(mask, [box], 1)
    filled = mask.copy()
    if rng.random() < 0.3 and min(a, b) > 20:
        cv2.circle(mask, (cx, cy), min(a, b) // 3, 0, -1)
    return mask, filled


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [random_mask(rng) for _ in range(args.masks)]
    rles = []
    for mask, _ in cases:
        rle = mask_util.encode(np.asfortranarray(mask))
        rles.append((rle, {"size": rle["size"], "counts": rle["counts"].decode("ascii")}))

    t0 = time.perf_counter()
    ours = [decode_rle(seg, Path("bench.json"), "segmentation") for _, seg in rles]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [mask_util.decode(rle) for rle, _ in rles]
    t_ref = time.perf_counter() - t0
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref)), "decoders disagree"

    t0 = time.perf_counter()
    traced = [mask_to_polygons(m) for m in ours]
    t_trace = time.perf_counter() - t0

    plain, holed, vertices = [], [], []
    for (mask, filled), result in zip(cases, traced):
        flat = [[v for p in poly.points for v in p] for poly in result.polygons]
        back = mask_util.decode(mask_util.merge(mask_util.frPyObjects(flat, H, W)))
        (holed if result.holes_filled else plain).append(iou(back, filled))
        vertices += [len(poly.points) for poly in result.polygons]

    n = len(cases)
    print(f"{n} masks of {W}x{H}, {len(holed)} with a hole; decoders agree on every pixel")
    print(f"decode  ours {1e3 * t_ours / n:.3f} ms/mask   pycocotools {1e3 * t_ref / n:.3f}"
          f" ms/mask   ratio {t_ours / t_ref:.1f}x")
    print(f"trace   {1e3 * t_trace / n:.3f} ms/mask   vertices/polygon median"
          f" {statistics.median(vertices):.0f} max {max(vertices)}")
    print(f"IoU (polygons rasterized by pycocotools vs mask)   no hole: mean"
          f" {statistics.mean(plain):.4f} min {min(plain):.4f}")
    if holed:
        print(f"IoU vs the mask with its hole filled               hole:    mean"
              f" {statistics.mean(holed):.4f} min {min(holed):.4f}")


if __name__ == "__main__":
    main()
