"""Assisted labeling, as the annotator asks for it: pre-label frames of a project source with
the active detector (or segmenter, optionally relabelled by the active crop classifier), and
follow boxes a user selected through the next frames with the tracker. Both store their
results as proposals (src/training/inference/run.py's ProposalWriter) and stop cooperatively
between batches; what was predicted before a stop is still stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from src.db import annotations as annotations_repo
from src.db import proposals as proposals_repo
from src.db.project import Project
from src.db.records import Annotation, ModelVersion
from src.errors import ModelError, UntrustedModelError
from src.training.inference import loading
from src.training.inference.loading import CROP_TASKS, find_version
from src.training.inference.media import MediaInput, open_input
from src.training.inference.predictor import Predictor
from src.training.inference.propagate import make_tracker, track_frame
from src.training.inference.results import Detection, Prediction, bounding_box, box_iou
from src.training.inference.run import (Progress, ProposalWriter, ShouldStop, StoreSummary,
                                        predict_media, store_predictions)
from src.training.inference.two_stage import TwoStagePredictor
from src.training.models import ModelManager

PROPOSING_TASKS = ("detect", "segment")
SEED_CONFIDENCE = 1.0
SAME_OBJECT_IOU = 0.5       # an earlier proposal this close to a followed box is replaced


@dataclass
class AssistOptions:
    """How to predict: the detector's threshold, and whether the crop classifier relabels."""
    conf: float = 0.25
    two_stage: bool = False
    batch: int = 4
    device: str = "auto"


@dataclass
class Seed:
    """A box the user selected to follow: [x1, y1, x2, y2] and its class name."""
    box: list[float]
    class_name: str


def active_proposer(project: Project, two_stage: bool = False) -> ModelVersion:
    """The active detector (else segmenter) that would make proposals, checked before any
    work starts: a ModelError saying what to do when there is none or it is not trusted."""
    version = find_version(project, "active", PROPOSING_TASKS)
    manager = ModelManager(project)
    needed = [version]
    if two_stage:
        needed.append(find_version(project, "active", CROP_TASKS))
    for mv in needed:
        if not manager.is_trusted(mv):
            raise UntrustedModelError(
                f"the active {mv.task} model '{mv.display_name or mv.name}' is not trusted",
                field="model", hint="trust it in the Models dialog or with "
                                    f"`python main.py models trust {mv.id}`")
    return version


def load_proposer(project: Project, options: AssistOptions
                  ) -> tuple[ModelVersion, Predictor]:
    """(the active detector's version, its predictor — two-stage when asked)."""
    version = active_proposer(project, options.two_stage)
    common = dict(device=options.device, batch=options.batch)
    predictor = loading.predictor_for(project, version, conf=options.conf, **common)
    if options.two_stage:
        classifier = find_version(project, "active", CROP_TASKS)
        predictor = TwoStagePredictor(predictor, loading.predictor_for(project, classifier,
                                                                      **common))
    return version, predictor


def open_source(project: Project, source_id: int) -> MediaInput:
    return open_input(str(source_id), project)


def prelabel(project: Project, source_id: int, indices: list[int], options: AssistOptions, *,
             progress: Optional[Progress] = None,
             should_stop: Optional[ShouldStop] = None) -> StoreSummary:
    """Predict on frames `indices` of a project source and store the proposals."""
    version, predictor = load_proposer(project, options)
    with open_source(project, source_id) as media:
        _check_indices(indices, media)
        return store_predictions(project, media, version, predictor, indices,
                                 progress=progress, should_stop=should_stop)


def follow(predictor: Predictor, media: MediaInput, start: int, seeds: list[Seed],
           indices: list[int], *, tracker: str = "bytetrack",
           progress: Optional[Progress] = None, should_stop: Optional[ShouldStop] = None):
    """(prediction, image) for each of `indices` (the frames after `start`, in order): the
    detector's boxes the tracker links to a seed's track, each given the seed's class."""
    state = make_tracker(tracker, predictor.conf)
    first = media.read(start)
    h, w = first.shape[:2]
    seeded = Prediction(width=w, height=h, task="detect", frame_index=start, detections=[
        Detection("box", i, s.class_name, SEED_CONFIDENCE, list(s.box))
        for i, s in enumerate(seeds)])
    classes = {d.track_id: d.class_name for d in track_frame(state, seeded, first).detections}
    user_conf = predictor.conf
    predictor.conf = min(user_conf, 0.1)          # ByteTrack continues with low-score boxes
    try:
        for pred, image in predict_media(predictor, media, indices, progress=progress,
                                         should_stop=should_stop, keep_images=True):
            tracked = track_frame(state, pred, image)
            tracked.detections = [_as_seed_class(d, classes) for d in tracked.detections
                                  if d.track_id in classes]
            yield tracked, image
    finally:
        predictor.conf = user_conf


def _as_seed_class(det: Detection, classes: dict[int, str]) -> Detection:
    det.class_name = classes[det.track_id]
    return det


class FollowWriter(ProposalWriter):
    """Stores followed boxes beside the model's other proposals on those frames: only an
    earlier proposal of the same model on the same object is replaced (a pre-label of the
    other objects stays)."""

    def _store(self, anns: list[Annotation], details: list) -> list[Annotation]:
        conn = self.project.conn
        drop = []
        for frame in self._frames:
            new = [_box(a) for a in anns if a.frame_id == frame.id]
            drop += [old.id for old in annotations_repo.list_annotations(conn, frame.id,
                                                                         status="proposed")
                     if old.source == self.model_source and old.kind != "tag"
                     and any(box_iou(_box(old), b) >= SAME_OBJECT_IOU for b in new)]
        return proposals_repo.swap_proposals(conn, self.model_source, drop, anns, details)


def _box(ann: Annotation) -> list[float]:
    return ann.geometry if ann.kind == "box" else bounding_box(ann.geometry)


def propagate_selection(project: Project, source_id: int, start: int, seeds: list[Seed],
                        count: int, options: AssistOptions, *,
                        progress: Optional[Progress] = None,
                        should_stop: Optional[ShouldStop] = None) -> StoreSummary:
    """Follow `seeds` (boxes on frame `start`) through the next `count` frames; store what
    was found as proposals with track ids."""
    if not seeds:
        raise ModelError("there is no box to follow", field="selection",
                         hint="select one or more boxes on the frame first")
    version, predictor = load_proposer(project, options)
    with open_source(project, source_id) as media:
        indices = list(range(start + 1, min(start + 1 + count, media.frame_count)))
        _check_indices(indices, media)
        writer = FollowWriter(project, media.source, version)
        for pred, image in follow(predictor, media, start, seeds, indices, progress=progress,
                                  should_stop=should_stop):
            writer.add(pred, image)
        return writer.commit()


def _check_indices(indices: list[int], media: MediaInput) -> None:
    if not indices:
        raise ModelError("there is no frame to work on", field="frames",
                         hint=f"this source has frames 0..{media.frame_count - 1}; "
                              "choose frames inside it (not past the last one)")
    bad = [i for i in indices if not 0 <= i < media.frame_count]
    if bad:
        raise ModelError(f"frame {bad[0]} is outside this source", field="frames",
                         hint=f"this source has frames 0..{media.frame_count - 1}")
