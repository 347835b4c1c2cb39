"""Propagation through video: the detector's boxes on each frame are linked into tracks by
ultralytics' own trackers (ByteTrack or BoT-SORT, `ultralytics.trackers`), fed with our
predictor's detections so that one predictor contract (and two-stage relabelling) serves
predicting and tracking alike.

ByteTrack continues tracks with low-score boxes, so the detector runs at the tracker's low
threshold and the user's confidence is where tracks start and are matched first.
"""
from __future__ import annotations

import copy
from typing import Iterator, Optional

import numpy as np

from src.errors import ModelError
from src.training.inference.media import MediaInput
from src.training.inference.predictor import Predictor
from src.training.inference.results import Prediction
from src.training.inference.run import Progress, ShouldStop, predict_media

TRACKERS = ("bytetrack", "botsort")
LOW_THRESH = 0.1        # ultralytics' default track_low_thresh


def make_tracker(name: str = "bytetrack", conf: float = 0.25):
    """A fresh ultralytics tracker configured from its bundled yaml."""
    if name not in TRACKERS:
        raise ModelError(f"unknown tracker '{name}'", field="--tracker",
                         hint=f"use one of {', '.join(TRACKERS)}")
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml
    cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{name}.yaml")))
    cfg.track_high_thresh = cfg.new_track_thresh = max(conf, LOW_THRESH)
    cfg.track_low_thresh = min(LOW_THRESH, conf)
    if name == "botsort":
        cfg.with_reid = False
    cfg.device = "cpu"
    return TRACKER_MAP[name](args=cfg)


def track_frame(tracker, pred: Prediction, image: np.ndarray) -> Prediction:
    """The prediction reduced to the detections the tracker follows, with their track ids."""
    from ultralytics.engine.results import Boxes
    data = np.array([[*d.box, d.confidence, d.class_id] for d in pred.detections],
                    dtype=np.float32).reshape(-1, 6)
    tracks = tracker.update(Boxes(data, (pred.height, pred.width)), image)
    tracked = copy.copy(pred)
    tracked.detections = []
    for row in np.asarray(tracks).reshape(-1, 8):
        det = copy.deepcopy(pred.detections[int(row[7])])
        det.track_id = int(row[4])
        tracked.detections.append(det)
    return tracked


def propagate(predictor: Predictor, media: MediaInput, indices: list[int], *,
              tracker: str = "bytetrack",
              progress: Optional[Progress] = None, should_stop: Optional[ShouldStop] = None
              ) -> Iterator[tuple[Prediction, np.ndarray]]:
    """(tracked prediction, image) for each frame of `indices` (consecutive frames, in
    order). Track ids are the tracker's own (1, 2, ...); storing them gives each a
    project-wide id (src/db/proposals.py)."""
    state = make_tracker(tracker, predictor.conf)
    user_conf = predictor.conf
    predictor.conf = min(user_conf, LOW_THRESH)
    try:
        for pred, image in predict_media(predictor, media, indices, progress=progress,
                                         should_stop=should_stop, keep_images=True):
            yield track_frame(state, pred, image), image
    finally:
        predictor.conf = user_conf
