"""What a user must change to turn a model's proposals into the truth of a frame.

The fewest edits, by kind (the kinds of src/db/proposals.py's corrections):
- a proposal matching a truth box with IoU >= 0.7 and the same class: `accepted`, no cost;
- IoU >= 0.7 but another class: one `reclassified`;
- 0.3 <= IoU < 0.7: one `moved_resized` (plus one `reclassified` if the class differs too);
- a truth box nothing matches: one `added` (the model missed it);
- a proposal matching nothing: one `deleted` (spurious).
Boxes with IoU < 0.3 never match. The matching is a minimum-cost assignment (so the count is
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
    """A box [x1, y1, x2, y2] in pixels and its class (an id or a name)."""

    box: tuple[float, float, float, float]
    cls: int | str


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


def count_edits(proposals: Sequence[Shape], truth: Sequence[Shape]) -> EditCounts:
    """The fewest edits that turn `proposals` into `truth` (see the module docstring)."""
    pairs = _pairs(proposals, truth)
    counts = dict(accepted=0, moved_resized=0, reclassified=0, deleted=0, added=0)
    matched_p, matched_t = set(), set()
    for t, p in pairs:
        iou = box_iou(truth[t].box, proposals[p].box)
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


def _pairs(proposals: Sequence[Shape], truth: Sequence[Shape]) -> list[tuple[int, int]]:
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
            cost[t, p] = _pair_cost(box_iou(truth[t].box, proposals[p].box),
                                    truth[t].cls == proposals[p].cls)
        cost[t, n_p + t] = 1.0                       # truth box t left unmatched: added
    for p in range(n_p):
        cost[n_t + p, p] = 1.0                       # proposal p left unmatched: deleted
    cost[n_t:, n_p:] = 0.0
    rows, cols = linear_sum_assignment(cost)
    return sorted((int(t), int(p)) for t, p in zip(rows, cols)
                  if t < n_t and p < n_p and cost[t, p] < _NO_MATCH)
