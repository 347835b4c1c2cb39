"""What a user must change to turn a model's proposals into the truth of a frame.

The fewest edits, by kind (the kinds of src/db/proposals.py's corrections):
- a proposal matching a truth box with IoU >= 0.7 and the same class: `accepted`, no cost;
- IoU >= 0.7 but another class: one `reclassified`;
- 0.3 <= IoU < 0.7: one `moved_resized` (plus one `reclassified` if the class differs too);
- a truth box nothing matches: one `added` (the model missed it);
- a proposal matching nothing: one `deleted` (spurious).
Boxes with IoU < 0.3 never match. For segmentation the IoU is between masks: each shape's
polygon (a box: its rectangle) rasterised at the frame's size (`count_mask_edits`), or any
IoU matrix the caller computed (`count_edits(..., ious=)`, e.g. between predicted masks). The matching is a minimum-cost assignment (so the count is
the fewest edits, whatever the order of the boxes); among equally cheap matchings it prefers
higher IoU. A pair needing both an adjustment and a class change costs 2, as much as deleting
and redrawing; it is then counted as the adjustment and the class change.

`proposal_score` turns the edits of a frame into a score in [0, 1] (1: nothing to change),
the validation metric of the learning loop.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

ACCEPT_IOU = 0.7
ADJUST_IOU = 0.3
_NO_MATCH = 1e6


@dataclass(frozen=True)
class Shape:
    """A box [x1, y1, x2, y2] in pixels and its class (an id or a name); a polygon's points
    ((x, y), ...) too when it is one (its mask is what mask IoU compares)."""

    box: tuple[float, float, float, float]
    cls: int | str
    polygon: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class EditCounts:
    accepted: int = 0
    moved_resized: int = 0
    reclassified: int = 0
    deleted: int = 0
    added: int = 0

    @property
    def edits(self) -> int:
        """Edits that cost the user something (accepting as it is is free)."""
        return self.moved_resized + self.reclassified + self.deleted + self.added

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))


def count_edits(proposals: Sequence[Shape], truth: Sequence[Shape],
                ious: np.ndarray | None = None) -> EditCounts:
    """The fewest edits that turn `proposals` into `truth` (see the module docstring).
    `ious[t, p]`: the IoU of truth t and proposal p (default: their boxes')."""
    if ious is None:
        ious = np.array([[box_iou(t.box, p.box) for p in proposals] for t in truth])
    ious = np.asarray(ious, dtype=np.float64).reshape(len(truth), len(proposals))
    pairs = _pairs(proposals, truth, ious)
    counts = dict(accepted=0, moved_resized=0, reclassified=0, deleted=0, added=0)
    matched_p, matched_t = set(), set()
    for t, p in pairs:
        iou = ious[t, p]
        same = truth[t].cls == proposals[p].cls
        if iou >= ACCEPT_IOU and same:
            counts["accepted"] += 1
        counts["reclassified"] += int(not same)
        counts["moved_resized"] += int(iou < ACCEPT_IOU)
        matched_t.add(t)
        matched_p.add(p)
    counts["added"] = len(truth) - len(matched_t)
    counts["deleted"] = len(proposals) - len(matched_p)
    return EditCounts(**counts)


def proposal_score(counts: EditCounts, n_proposals: int, n_truth: int) -> float:
    """1 - edits / (proposals + truth boxes): 1 when nothing is to change (an empty frame
    with no proposal too), 0 when every proposal is wrong and every box is missed."""
    shapes = n_proposals + n_truth
    return 1.0 if shapes == 0 else max(0.0, 1.0 - counts.edits / shapes)


def box_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _pair_cost(iou: float, same: bool) -> float:
    if iou < ADJUST_IOU:
        return _NO_MATCH
    return int(not same) + int(iou < ACCEPT_IOU) - 1e-3 * iou   # ties: the higher IoU wins


def count_mask_edits(proposals: Sequence[Shape], truth: Sequence[Shape],
                     frame_hw: tuple[int, int]) -> EditCounts:
    """`count_edits` with the IoU of the shapes' masks rasterised at the frame's size."""
    return count_edits(proposals, truth, mask_ious([rasterise(s, frame_hw) for s in truth],
                                                   [rasterise(s, frame_hw) for s in proposals]))


def rasterise(shape: Shape, frame_hw: tuple[int, int]) -> np.ndarray:
    """The shape's mask (bool, frame_hw): its polygon filled, else its box's rectangle."""
    points = shape.polygon if shape.polygon and len(shape.polygon) >= 3 else None
    if points is None:
        x1, y1, x2, y2 = shape.box
        points = ((x1, y1), (x2, y1), (x2, y2), (x1, y2))
    return polygon_mask(np.asarray(points, np.float64), frame_hw)


def polygon_mask(points: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """A filled polygon (pixel coordinates, (N, 2)) as a bool mask of frame_hw: a pixel is in
    when its centre is (cv2.fillPoly also takes every pixel the outline touches, which made
    a 10x10 box 121 pixels)."""
    from matplotlib.path import Path

    h, w = frame_hw
    mask = np.zeros((h, w), bool)
    points = np.asarray(points, np.float64).reshape(-1, 2)
    x0, y0 = np.clip(np.floor(points.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(points.max(0)).astype(int), 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1]
    centres = np.column_stack([xs.ravel() + 0.5, ys.ravel() + 0.5])
    mask[y0:y1, x0:x1] = Path(points).contains_points(centres).reshape(y1 - y0, x1 - x0)
    return mask


def mask_ious(truth: Sequence[np.ndarray], proposals: Sequence[np.ndarray]) -> np.ndarray:
    """(len(truth), len(proposals)) IoU of boolean masks of one size."""
    if not len(truth) or not len(proposals):
        return np.zeros((len(truth), len(proposals)))
    t = np.stack([m.reshape(-1) for m in truth]).astype(np.float32)
    p = np.stack([m.reshape(-1) for m in proposals]).astype(np.float32)
    inter = t @ p.T
    union = t.sum(1)[:, None] + p.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _pairs(proposals: Sequence[Shape], truth: Sequence[Shape], ious: np.ndarray
           ) -> list[tuple[int, int]]:
    """(truth index, proposal index) of a minimum-cost matching. An unmatched box costs 1
    (added or deleted), so the square matrix has a 'leave it' option for each box."""
    n_t, n_p = len(truth), len(proposals)
    if not n_t or not n_p:
        return []
    from scipy.optimize import linear_sum_assignment

    size = n_t + n_p
    cost = np.full((size, size), _NO_MATCH)
    for t in range(n_t):
        for p in range(n_p):
            cost[t, p] = _pair_cost(float(ious[t, p]), truth[t].cls == proposals[p].cls)
        cost[t, n_p + t] = 1.0                       # truth box t left unmatched: added
    for p in range(n_p):
        cost[n_t + p, p] = 1.0                       # proposal p left unmatched: deleted
    cost[n_t:, n_p:] = 0.0
    rows, cols = linear_sum_assignment(cost)
    return sorted((int(t), int(p)) for t, p in zip(rows, cols)
                  if t < n_t and p < n_p and cost[t, p] < _NO_MATCH)
