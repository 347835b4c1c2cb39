"""A simulated annotator for the learning loop (`python main.py learn simulate`).

Over the frames of a source that have ground truth (accepted annotations), in frame order:
take the current proposals (the session's predictor: base + adapter in use, or the base with
`adapt=False`), count the edits that turn them into the ground truth (`edits.count_edits`),
store the ground truth as the corrected frame (`LearningSession.frame_corrected`), and let
the loop update as a user would: every `update_every` frames an update starts; with
`wait=True` the simulated user pauses until it is over (an update "on pause"), otherwise
it keeps going and the proposals come from the previous adapter until the update ends.

With a segmentation base the edits are counted the same way with mask IoU: the proposals'
polygons and the truth's polygons (a box: its rectangle) rasterised at the frame's size
(`edits.count_mask_edits`). A detector's proposals are compared with the truth's boxes (a
polygon: its bounding box).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import learning as learning_repo
from src.db.project import Project
from src.db.records import Frame
from src.errors import MediaError
from src.training.learning.edits import EditCounts, Shape, count_edits, count_mask_edits
from src.training.learning.session import SUPPORTED_TASKS, LearningSession
from src.training.learning.settings import LearnSettings


@dataclass
class SimulatedFrame:
    frame_id: int
    frame_index: int
    edits: int
    by_kind: dict
    proposals: int
    truth: int
    adapter: bool               # the proposals came from base + adapter
    updates_done: int           # finished updates when the proposals were made


@dataclass
class SimulatedUpdate:
    after_frames: int           # corrected frames when it finished
    elapsed_s: float
    epochs: int
    samples: int
    val_metric: float | None
    base_metric: float | None
    used: bool
    reason: str


@dataclass
class Simulation:
    source: str
    base: str
    adapt: bool
    frames: list[SimulatedFrame] = field(default_factory=list)
    updates: list[SimulatedUpdate] = field(default_factory=list)
    session_id: int | None = None

    def mean_edits(self, from_frame: int = 1) -> float | None:
        """Mean edits per frame from the `from_frame`-th corrected frame on (1-based)."""
        rows = self.frames[from_frame - 1:]
        return sum(f.edits for f in rows) / len(rows) if rows else None

    def to_dict(self) -> dict:
        return {**asdict(self), "mean_edits": self.mean_edits(),
                "mean_edits_from_11th": self.mean_edits(11)}


def truth_frames(project: Project, source_id: int, first: int | None = None,
                 last: int | None = None) -> list[tuple[Frame, list[Shape]]]:
    """Frames of the source with ground truth (any accepted annotation, tags included, so
    an empty labelled frame counts), each with its shapes (a polygon keeps its points)."""
    names = {c.id: c.name.lower() for c in classes_repo.list_classes(project.conn)}
    out = []
    for frame in frames_repo.list_frames(project.conn, source_id):
        if (first is not None and frame.frame_index < first) or \
                (last is not None and frame.frame_index > last):
            continue
        anns = annotations_repo.list_annotations(project.conn, frame.id, status="accepted")
        if not anns:
            continue
        shapes = [Shape(tuple(_bbox(a)), names[a.class_id], _points(a)) for a in anns
                  if a.kind in ("box", "polygon")]
        out.append((frame, shapes))
    return out


def simulate(project: Project, source_id: int, base_ref: str, *, settings: LearnSettings,
             adapt: bool = True, wait: bool = True, first: int | None = None,
             last: int | None = None, progress=None) -> Simulation:
    """Run the simulated annotator (see the module docstring). With `adapt`, a new learning
    session is opened (an open one for this source and base must be closed first)."""
    from src.training.inference.loading import find_version, predictor_for, version_label

    frames = truth_frames(project, source_id, first, last)
    if not frames:
        raise MediaError("no frame of this source has ground truth (accepted annotations) "
                         "in the range asked", field="--source",
                         hint="annotate some frames, or build the demo project")
    base = find_version(project, base_ref, SUPPORTED_TASKS)
    if base.task not in SUPPORTED_TASKS:
        raise MediaError(f"the simulated annotator corrects detectors and segmenters; "
                         f"{version_label(base)} is a {base.task} model", field="--base",
                         hint="pick a detect or segment model version")
    result = Simulation(str(source_id), version_label(base), adapt)
    session, updates = None, []
    if adapt:
        if learning_repo.find_open_session(project.conn, source_id, base.id) is not None:
            raise MediaError("a learning session is already open for this source and base",
                             field="--source", hint="promote or discard it first, or pass "
                                                    "--replace to discard it")
        session = LearningSession.open(project, source_id, base.id, settings=settings,
                                       on_update=updates.append)
        result.session_id = session.record.id
        base_predictor = None
    else:
        from src.training.learning.session import session_imgsz

        base_predictor = predictor_for(project, base, conf=settings.conf, iou=settings.iou,
                                       imgsz=session_imgsz(project, base, settings),
                                       device=settings.device)
    try:
        for n, (frame, truth) in enumerate(frames, start=1):
            result.frames.append(_one_frame(project, frame, truth, session, base_predictor,
                                            masks=base.task == "segment"))
            if session is not None:
                session.frame_corrected(frame.id, EditCounts(**result.frames[-1].by_kind))
                if wait:
                    session.wait()
            _collect(updates, result, n)
            if progress is not None:
                progress(result.frames[-1])
        if session is not None:
            session.wait()
            _collect(updates, result, len(frames))
    finally:
        if session is not None:
            session.close()
    return result


def _one_frame(project, frame: Frame, truth: list[Shape], session, base_predictor, *,
               masks: bool = False) -> SimulatedFrame:
    image = cv2.imread(str(project.abspath(frame.image_path)))
    if image is None:
        raise MediaError("frame image is missing", path=project.abspath(frame.image_path))
    if session is not None:
        in_use = session.status().adapter_in_use
        updates_done = session.status().updates
        predictor = session.predictor()
    else:
        in_use, updates_done, predictor = False, 0, base_predictor
    found = predictor.predict_one(image).detections
    if masks:
        proposals = [Shape(tuple(d.box), d.class_name.lower(),
                           tuple(map(tuple, d.polygon)) if d.polygon else None) for d in found]
        counts = count_mask_edits(proposals, truth, image.shape[:2])
    else:
        proposals = [Shape(tuple(d.box), d.class_name.lower()) for d in found]
        counts = count_edits(proposals, truth)
    return SimulatedFrame(frame.id, frame.frame_index, counts.edits, counts.as_dict(),
                          len(proposals), len(truth), in_use, updates_done)


def _collect(updates: list, result: Simulation, corrected: int) -> None:
    while updates:
        u = updates.pop(0)
        result.updates.append(SimulatedUpdate(corrected, round(u.elapsed_s, 2), u.epochs,
                                              u.samples, u.val_metric, u.base_metric, u.used,
                                              u.reason))


def _points(ann) -> tuple[tuple[float, float], ...] | None:
    return tuple((float(x), float(y)) for x, y in ann.geometry) if ann.kind == "polygon" else None


def _bbox(ann) -> list[float]:
    if ann.kind == "box":
        return [float(v) for v in ann.geometry]
    xs, ys = [p[0] for p in ann.geometry], [p[1] for p in ann.geometry]
    return [min(xs), min(ys), max(xs), max(ys)]
