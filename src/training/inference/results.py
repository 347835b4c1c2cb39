"""What every predictor returns: plain dataclasses in original-image pixels.

One result type for YOLO detect/segment/classify and timm classifiers, so storing
proposals, drawing, JSON output and the HTTP API each handle one shape of data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass
class ClassScore:
    """A class of the model with a confidence (classification, or a detector's stage)."""
    class_id: int
    class_name: str
    confidence: float


@dataclass
class Detection:
    """A box or polygon found in an image, in original-image pixels.

    `box` is [x1, y1, x2, y2] for both kinds (a polygon's bounding box); `polygon` is
    [[x, y], ...] for segmentation. `detector` keeps the first stage's class and confidence
    when a second-stage classifier relabelled the object; `track_id` is set by propagation.
    """
    kind: str                                    # 'box' | 'polygon'
    class_id: int
    class_name: str
    confidence: float
    box: list[float]
    polygon: Optional[list[list[float]]] = None
    detector: Optional[ClassScore] = None
    track_id: Optional[int] = None

    @property
    def geometry(self) -> list:
        """The geometry as LabelLoop stores it (box: [x1, y1, x2, y2]; polygon: points)."""
        return self.polygon if self.kind == "polygon" else self.box


@dataclass
class Prediction:
    """What one model found in one image."""
    width: int
    height: int
    task: str                                    # 'detect' | 'segment' | 'classify'
    detections: list[Detection] = field(default_factory=list)
    classes: list[ClassScore] = field(default_factory=list)   # classification, best first
    frame_index: Optional[int] = None            # position in the video / folder / range
    inference_ms: float = 0.0                    # this image's share of the batch's time

    @property
    def top1(self) -> Optional[ClassScore]:
        return self.classes[0] if self.classes else None

    def to_dict(self) -> dict:
        return asdict(self)


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def bounding_box(points: list[list[float]]) -> list[float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]
