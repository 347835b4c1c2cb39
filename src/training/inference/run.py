"""Predicting over media with progress and cooperative cancel, and turning predictions into
LabelLoop proposals (`source = model:<id>`, `status = proposed`).

Storing rules: proposals never touch accepted annotations; re-running a model replaces its
earlier proposals on the frames it ran on, in one transaction; a proposal that repeats an
accepted annotation (same class, IoU >= DUPLICATE_IOU) is not proposed again; frames of a
video that were not captured yet are captured (the image already decoded is written).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

from src.data.capture import capture_array
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.db.project import Project
from src.db.records import Annotation, Frame, MediaSource, ModelVersion
from src.errors import MediaError
from src.training.inference.media import MediaInput, batches
from src.training.inference.predictor import Predictor
from src.training.inference.results import Prediction, bounding_box, box_iou

DUPLICATE_IOU = 0.7
Progress = Callable[[int, int], None]          # (frames done, frames in all)
ShouldStop = Callable[[], bool]


def predict_media(predictor: Predictor, media: MediaInput, indices: list[int], *,
                  progress: Optional[Progress] = None, should_stop: Optional[ShouldStop] = None,
                  keep_images: bool = False) -> Iterator[tuple[Prediction, Optional[np.ndarray]]]:
    """(prediction, image or None) per frame, batch by batch; stops between batches when
    `should_stop()` turns true. `prediction.frame_index` is the frame's index."""
    done = 0
    for chunk, images in batches(media, indices, predictor.batch):
        if should_stop is not None and should_stop():
            return
        for index, image, pred in zip(chunk, images, predictor.predict(images)):
            pred.frame_index = index
            yield pred, image if keep_images else None
        done += len(chunk)
        if progress is not None:
            progress(done, len(indices))


@dataclass
class StoreSummary:
    frames: int = 0
    proposals: int = 0
    captured: int = 0
    duplicates_skipped: int = 0
    classes_created: list[str] = field(default_factory=list)
    annotation_ids: list[int] = field(default_factory=list)
    tracks: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # id -> (frame, class)


class ProposalWriter:
    """Collects predictions on frames of one project source, then stores them at once."""

    def __init__(self, project: Project, source: MediaSource, version: ModelVersion) -> None:
        if source is None or source.id is None:
            raise MediaError("proposals can only be stored on a source of the project",
                             field="SOURCE", hint="import the video or folder first")
        self.project, self.source, self.version = project, source, version
        self.model_source = f"model:{version.id}"
        self.summary = StoreSummary()
        self._frames: list[Frame] = []
        self._pending: list[tuple[Annotation, proposals_repo.ProposalDetail]] = []
        self._seen: list[tuple[int, str]] = []       # (frame index, class name) per pending
        self._class_ids: dict[str, int] = {}

    def add(self, pred: Prediction, image: np.ndarray) -> None:
        """Capture the frame if needed and queue its proposals."""
        frame = self._frame(pred.frame_index, image)
        self._frames.append(frame)
        accepted = [a for a in annotations_repo.list_annotations(self.project.conn, frame.id,
                                                                 status="accepted")]
        if pred.task == "classify" and pred.top1 is not None:
            self._queue_tag(frame, pred)
        for det in pred.detections:
            class_id = self._class_id(det.class_name)
            if _repeats_accepted(det.box, class_id, accepted):
                self.summary.duplicates_skipped += 1
                continue
            ann = Annotation(frame.id, class_id, det.kind, det.geometry, self.model_source,
                             _unit(det.confidence), "proposed")
            detail = proposals_repo.ProposalDetail(
                track_id=det.track_id,
                detector_class=det.detector.class_name if det.detector else None,
                detector_confidence=_unit(det.detector.confidence) if det.detector else None)
            self._pending.append((ann, detail))
            self._seen.append((pred.frame_index, det.class_name))

    def _queue_tag(self, frame: Frame, pred: Prediction) -> None:
        """A classifier's top class becomes a proposed frame tag."""
        top = pred.top1
        self._pending.append((Annotation(frame.id, self._class_id(top.class_name), "tag", None,
                                         self.model_source, _unit(top.confidence), "proposed"),
                              proposals_repo.ProposalDetail()))
        self._seen.append((pred.frame_index, top.class_name))

    def commit(self) -> StoreSummary:
        """Replace this model's proposals on the frames seen, in one transaction."""
        anns = [a for a, _ in self._pending]
        details = [d for _, d in self._pending]
        stored = self._store(anns, details)
        self.summary.frames = len(self._frames)
        self.summary.proposals = len(stored)
        self.summary.annotation_ids = [a.id for a in stored]
        for detail, seen in zip(details, self._seen):
            if detail.track_id is not None:
                self.summary.tracks.setdefault(detail.track_id, []).append(seen)
        return self.summary

    def _store(self, anns: list[Annotation], details: list) -> list[Annotation]:
        return proposals_repo.replace_proposals(self.project.conn, self.model_source,
                                                [f.id for f in self._frames], anns, details)

    def _frame(self, index: int, image: np.ndarray) -> Frame:
        frame = frames_repo.get_frame_at(self.project.conn, self.source.id, index)
        if frame is None:
            frame = capture_array(self.project, self.source, index, image)
            self.summary.captured += 1
        return frame

    def _class_id(self, name: str) -> int:
        if name not in self._class_ids:
            existing = classes_repo.get_class_by_name(self.project.conn, name)
            if existing is None:
                existing = classes_repo.add_class(self.project.conn, name)
                self.summary.classes_created.append(name)
            self._class_ids[name] = existing.id
        return self._class_ids[name]


def _repeats_accepted(box: list[float], class_id: int, accepted: list[Annotation]) -> bool:
    for ann in accepted:
        if ann.class_id != class_id or ann.kind == "tag":
            continue
        other = ann.geometry if ann.kind == "box" else bounding_box(ann.geometry)
        if box_iou(box, other) >= DUPLICATE_IOU:
            return True
    return False


def _unit(value: float) -> float:
    """A confidence clipped into [0, 1] (float32 softmax can round to 1.0000001)."""
    return min(1.0, max(0.0, float(value)))


def store_predictions(project: Project, media: MediaInput, version: ModelVersion,
                      predictor: Predictor, indices: list[int], *,
                      progress: Optional[Progress] = None,
                      should_stop: Optional[ShouldStop] = None,
                      on_prediction: Optional[Callable[[Prediction, np.ndarray], None]] = None
                      ) -> StoreSummary:
    """Predict on `indices` of a project source and store the proposals (see module doc)."""
    writer = ProposalWriter(project, media.source, version)
    for pred, image in predict_media(predictor, media, indices, progress=progress,
                                     should_stop=should_stop, keep_images=True):
        writer.add(pred, image)
        if on_prediction is not None:
            on_prediction(pred, image)
    return writer.commit()
