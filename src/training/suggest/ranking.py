"""Suggest frames: which frames of a source to label next.

Candidates are the captured frames with no accepted annotation and, for a video, an even
sample of the frames not captured yet. The model predicts on each (at a low confidence
threshold, so the boxes it is unsure of are seen); candidates are ranked by the mean of
their uncertainty scores (src/training/suggest/uncertainty.py), and picked best first,
skipping any that is a near-duplicate (src/training/suggest/signature.py) of a labelled
frame or of a frame picked before it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from src.data.video import decode_image_file
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db import suggestions as suggestions_repo
from src.db.project import Project
from src.db.records import Frame
from src.db.suggestions import StoredSuggestion
from src.errors import LabelLoopError
from src.training.inference.media import MediaInput, batches
from src.training.inference.predictor import Predictor
from src.training.suggest.signature import (NEAR_DUPLICATE, frame_signature, is_near_duplicate,
                                            nearest_distance)
from src.training.suggest.uncertainty import Uncertainty, frame_uncertainty

LOW_CONF = 0.05          # predict at this threshold: uncertain boxes must be seen
DEFAULT_SAMPLES = 60     # uncaptured frames of a video looked at
Progress = Callable[[int, int], None]


@dataclass
class Suggestion:
    frame_index: int
    frame_id: Optional[int]        # None: not captured yet
    score: float
    uncertainty: Uncertainty
    boxes: int                     # what the model found at LOW_CONF
    nearest_labelled: float        # signature distance to the closest labelled frame

    @property
    def details(self) -> str:
        """Why it was suggested, in words (the gallery's tooltip)."""
        u = self.uncertainty
        parts = [f"low confidence {u.low_confidence:.2f}", f"entropy {u.entropy:.2f}"]
        if u.disagreement is not None:
            parts.append(f"base/adapter disagreement {u.disagreement:.2f}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["uncertainty"] = {k: v for k, v in out["uncertainty"].items() if v is not None}
        out["nearest_labelled"] = (None if self.nearest_labelled == float("inf")
                                   else round(self.nearest_labelled, 3))
        return out


@dataclass
class SuggestionReport:
    source_id: Optional[int] = None
    suggestions: list[Suggestion] = field(default_factory=list)
    candidates: int = 0
    labelled: int = 0
    skipped_duplicates: int = 0
    compared: bool = False           # a second model's disagreement was scored
    stopped: bool = False


@dataclass
class _Scored:
    index: int
    frame_id: Optional[int]
    uncertainty: Uncertainty
    boxes: int
    signature: np.ndarray


def labelled_frames(project: Project, source_id: int) -> list[Frame]:
    """Captured frames of the source with at least one accepted annotation."""
    with_labels = {a.frame_id for a in annotations_repo.iter_annotations(project.conn,
                                                                         status="accepted")}
    return [f for f in frames_repo.list_frames(project.conn, source_id) if f.id in with_labels]


def candidate_frames(project: Project, source_id: int, frame_count: int,
                     samples: int = DEFAULT_SAMPLES, within: Optional[list[int]] = None
                     ) -> dict[int, Optional[int]]:
    """{frame index: frame id, or None when not captured}: unlabelled captured frames plus
    `samples` uncaptured frames spread evenly over the video (or over `within`)."""
    allowed = set(within) if within is not None else set(range(frame_count))
    frames = [f for f in frames_repo.list_frames(project.conn, source_id)
              if f.frame_index in allowed]
    labelled = {f.id for f in labelled_frames(project, source_id)}
    out = {f.frame_index: f.id for f in frames if f.id not in labelled}
    captured = {f.frame_index for f in frames}
    free = [i for i in sorted(allowed) if i not in captured]
    if free and samples > 0:
        picks = np.unique(np.linspace(0, len(free) - 1, min(samples, len(free))).round())
        out.update({free[int(k)]: None for k in picks})
    return dict(sorted(out.items()))


def suggest_frames(project: Project, media: MediaInput, predictor: Predictor, *,
                   second: Optional[Predictor] = None, count: int = 10,
                   samples: int = DEFAULT_SAMPLES, within: Optional[list[int]] = None,
                   threshold: float = NEAR_DUPLICATE,
                   progress: Optional[Progress] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> SuggestionReport:
    """The `count` frames of a project source most worth labelling next (see module doc).
    `second`: another model (the session's adapter) whose disagreement is scored too;
    `within`: only these frame indices are candidates."""
    if media.source is None or media.source.id is None:
        raise LabelLoopError("frames can only be suggested on a source of the project",
                             field="--source", hint="import the video or folder first")
    if count < 1:
        raise LabelLoopError(f"--count must be at least 1, got {count}", field="--count")
    source_id = media.source.id
    labelled = [_stored_signature(project, f) for f in labelled_frames(project, source_id)]
    candidates = candidate_frames(project, source_id, media.frame_count, samples, within)
    report = SuggestionReport(source_id, candidates=len(candidates), labelled=len(labelled),
                              compared=second is not None)
    scored = _score(media, predictor, second, candidates, progress, should_stop, report)
    report.suggestions = _pick(scored, labelled, count, threshold, report)
    return report


def store_ranking(project: Project, report: SuggestionReport,
                  model_version_id: Optional[int]) -> None:
    """Keep the report's ranking as its source's last one (N goes through it after a
    restart too); an empty ranking clears the stored one."""
    suggestions_repo.save_ranking(project.conn, report.source_id, [
        StoredSuggestion(report.source_id, rank, s.frame_index, s.score, s.details,
                         model_version_id)
        for rank, s in enumerate(report.suggestions, 1)])


def _score(media, predictor, second, candidates, progress, should_stop,
           report) -> list[_Scored]:
    out: list[_Scored] = []
    indices = list(candidates)
    saved = predictor.conf
    predictor.conf = min(saved, LOW_CONF)
    try:
        for chunk, images in batches(media, indices, predictor.batch):
            if should_stop is not None and should_stop():
                report.stopped = True
                break
            preds = predictor.predict(images)
            others = second.predict(images) if second is not None else [None] * len(images)
            for index, image, pred, other in zip(chunk, images, preds, others):
                out.append(_Scored(index, candidates[index], frame_uncertainty(pred, other),
                                   len(pred.detections), frame_signature(image)))
            if progress is not None:
                progress(len(out), len(indices))
    finally:
        predictor.conf = saved
    return out


def _pick(scored: list[_Scored], labelled: list[np.ndarray], count: int, threshold: float,
          report: SuggestionReport) -> list[Suggestion]:
    picked: list[Suggestion] = []
    picked_signatures: list[np.ndarray] = []
    for item in sorted(scored, key=lambda s: (-s.uncertainty.score, s.index)):
        if len(picked) == count:
            break
        if is_near_duplicate(item.signature, labelled + picked_signatures, threshold):
            report.skipped_duplicates += 1
            continue
        picked.append(Suggestion(item.index, item.frame_id, round(item.uncertainty.score, 4),
                                 item.uncertainty, item.boxes,
                                 nearest_distance(item.signature, labelled)))
        picked_signatures.append(item.signature)
    return picked


def _stored_signature(project: Project, frame: Frame) -> np.ndarray:
    image = decode_image_file(project.abspath(frame.image_path), cv2.IMREAD_GRAYSCALE)
    return frame_signature(image)
