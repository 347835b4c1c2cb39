"""Two-stage prediction: a detector finds objects, a crop classifier relabels each box.

Crops are cut as the dataset builder cuts them for a `crops` dataset (the same padding),
so the classifier sees what it was trained on. Each detection keeps the detector's class
and confidence in `detection.detector`; its class and confidence become the classifier's.
"""
from __future__ import annotations

import numpy as np

from src.training.inference.predictor import Predictor
from src.training.inference.results import ClassScore, Detection, Prediction

CROP_PADDING = 0.1      # DatasetSpec.crop_padding's default


def crop(image: np.ndarray, box: list[float], padding: float = CROP_PADDING) -> np.ndarray:
    """The box's crop with `padding` (a fraction of its size) on each side, clipped to the
    image; the same pixels as src/data/datasets/builder.py writes for a crops dataset."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * padding, (y2 - y1) * padding
    left, top = max(int(x1 - px), 0), max(int(y1 - py), 0)
    right = min(int(round(x2 + px + 0.4999)), w)
    bottom = min(int(round(y2 + py + 0.4999)), h)
    return image[top:max(bottom, top + 1), left:max(right, left + 1)]


class TwoStagePredictor(Predictor):
    """Detector + crop classifier behind the one Predictor contract."""

    def __init__(self, detector: Predictor, classifier: Predictor, *,
                 padding: float = CROP_PADDING) -> None:
        if classifier.task != "classify":
            raise ValueError(f"the second stage must be a classifier, got {classifier.task}")
        self.detector, self.classifier, self.padding = detector, classifier, padding
        self.task = detector.task
        self.names = classifier.names
        self.model_name = f"{detector.model_name} + {classifier.model_name}"
        self.iou, self.batch = detector.iou, detector.batch
        self.imgsz, self.device = detector.imgsz, detector.device

    @property
    def conf(self) -> float:
        return self.detector.conf

    @conf.setter
    def conf(self, value: float) -> None:
        self.detector.conf = value

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        preds = self.detector.predict(images)
        crops = [crop(image, det.box, self.padding)
                 for image, pred in zip(images, preds) for det in pred.detections]
        labels = iter(self.classifier.predict(crops)) if crops else iter(())
        for pred in preds:
            pred.detections = [self._relabel(det, next(labels)) for det in pred.detections]
        return preds

    @staticmethod
    def _relabel(det: Detection, label: Prediction) -> Detection:
        top = label.top1
        det.detector = ClassScore(det.class_id, det.class_name, det.confidence)
        det.class_id, det.class_name, det.confidence = top.class_id, top.class_name, top.confidence
        return det
