"""How unsure a model is about one frame: three scores in [0, 1], higher = more worth labelling.

- `low_confidence`: 1 - the highest confidence of what the model found (1 when it found
  nothing at all: every object may be missed); for a classifier, 1 - its top-1 probability.
- `entropy`: a detector's confidence is the probability that a box is a real object of its
  class, so each box carries a binary entropy (1 bit at 0.5, 0 at 0 or 1); the frame's is the
  mean over its boxes. For a classifier, the Shannon entropy of its class probabilities
  (top-k plus the rest as one bucket), divided by its maximum.
- `disagreement` (with a second model, e.g. base vs base + adapter): 1 - the mean IoU of
  boxes matched one to one between the two (same class, greedy by IoU; an unmatched box
  counts 0). Two empty predictions agree.

The frame's score is the mean of the scores available.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from src.training.inference.results import Detection, Prediction, box_iou

# Boxes a second model must agree on: those a user would see as proposals.
PROPOSAL_CONF = 0.25


@dataclass
class Uncertainty:
    low_confidence: float
    entropy: float
    disagreement: Optional[float] = None

    @property
    def score(self) -> float:
        parts = [self.low_confidence, self.entropy]
        if self.disagreement is not None:
            parts.append(self.disagreement)
        return sum(parts) / len(parts)


def binary_entropy(p: float) -> float:
    """Entropy in bits of a yes/no event of probability p."""
    p = min(1.0, max(0.0, float(p)))
    if p in (0.0, 1.0):
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def class_entropy(probs: list[float]) -> float:
    """Normalised Shannon entropy of class probabilities; the mass not listed (a top-k list)
    is one more bucket."""
    probs = [max(0.0, float(p)) for p in probs]
    rest = 1.0 - sum(probs)
    buckets = probs + ([rest] if rest > 1e-6 else [])
    if len(buckets) <= 1:
        return 0.0
    h = -sum(p * math.log(p) for p in buckets if p > 0)
    return min(1.0, h / math.log(len(buckets)))


def matched_iou(a: list[Detection], b: list[Detection]) -> float:
    """Mean IoU of a one-to-one greedy matching of same-class boxes; unmatched boxes count 0,
    so the mean is over max(len(a), len(b)). Both empty: 1 (full agreement)."""
    if not a and not b:
        return 1.0
    pairs = sorted(((box_iou(x.box, y.box), i, j) for i, x in enumerate(a)
                    for j, y in enumerate(b) if x.class_id == y.class_id), reverse=True)
    used_a, used_b, total = set(), set(), 0.0
    for iou, i, j in pairs:
        if iou <= 0 or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        total += iou
    return total / max(len(a), len(b))


def frame_uncertainty(pred: Prediction, other: Optional[Prediction] = None) -> Uncertainty:
    """The scores of one prediction (and its disagreement with `other`, when given)."""
    if pred.task == "classify":
        probs = [c.confidence for c in pred.classes]
        result = Uncertainty(1.0 - (probs[0] if probs else 0.0), class_entropy(probs))
    else:
        confs = [d.confidence for d in pred.detections]
        result = Uncertainty(1.0 - max(confs, default=0.0),
                             sum(map(binary_entropy, confs)) / len(confs) if confs else 0.0)
    if other is not None:
        result.disagreement = _disagreement(pred, other)
    return result


def _disagreement(a: Prediction, b: Prediction) -> float:
    if a.task == "classify":
        return 0.0 if (a.top1 and b.top1 and a.top1.class_id == b.top1.class_id) else 1.0
    shown_a = [d for d in a.detections if d.confidence >= PROPOSAL_CONF]
    shown_b = [d for d in b.detections if d.confidence >= PROPOSAL_CONF]
    return 1.0 - matched_iou(shown_a, shown_b)
