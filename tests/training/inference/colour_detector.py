"""A detector with known answers for the tracking tests: it finds the pure red and blue
squares of the test video by their colour, so what the tracker is given is exact."""
from __future__ import annotations

import numpy as np

from src.training.inference.predictor import Predictor
from src.training.inference.results import Detection, Prediction
from tests.training.inference.conftest import BLUE, RED


class ColourDetector(Predictor):
    task = "detect"
    names = ["red", "blue"]
    model_name = "colour"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.calls = 0

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        self.calls += 1
        return [self._one(image) for image in images]

    def _one(self, image: np.ndarray) -> Prediction:
        pred = Prediction(width=image.shape[1], height=image.shape[0], task="detect")
        for class_id, bgr in enumerate((RED, BLUE)):
            ys, xs = np.nonzero(np.abs(image.astype(int) - bgr).sum(axis=2) < 60)
            if len(xs):
                box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
                pred.detections.append(Detection("box", class_id, self.names[class_id], 0.9, box))
        return pred
