"""A learning session: a LoRA adapter on a detector or a segmenter, learned from the user's
corrections.

A session belongs to a project, a source and a base model version (the active detector by
default, else the active segmenter). Its folder (`<project>/learning/<...>/`) holds the corrected frames' samples and
the adapter; the database holds the session, each corrected frame's edit counts by kind and
each finished update (src/db/learning.py). So a session, its adapter and whether the adapter
is in use survive a restart: `open` the same source and base again.

API (Qt-free; the GUI turns the callbacks into signals, the CLI prints):

    session = LearningSession.open(project, source_id, "active", on_update=cb)
    LearningSession.existing(project, source_id, "active")   # the open one, or None
    session.frame_corrected(frame_id, edits)   # the user edited the proposals and moved on:
                                               # the frame's accepted shapes become a sample;
                                               # every K frames an update starts by itself
    session.request_update()                   # on pause / "Update now": 'started' | 'queued'
                                               # | 'waiting' (too few corrected frames)
    session.status()                           # SessionStatus: frames, last update, in use+why
    session.predictor()                        # base + adapter when in use, else the base
    session.base_predictor()                   # the base alone (base/adapter disagreement)
    session.propose([frame_id, ...])           # store proposals from predictor() on frames
    batch = session.predict([frame_id, ...])   # the same in two halves: predict in any thread
    session.store_proposals(batch, frame_ids)  # (own connection), store in the session's
    session.promote("name")                    # a model version with lineage to the base
    session.discard()                          # adapter, samples and session gone
    session.close()                            # cancel a running update (the app quits)

Updates run in a daemon thread (`BackgroundUpdate`), one at a time, within the settings'
wall-time budget; until one finishes, `predictor()` keeps the previous adapter. An update's
adapter is used only when its validation proposal score on the corrected frames is not
below the base's on the same frames (`detector_update.py`); otherwise it is not saved and
the status says why. `on_update(LearningUpdate)` and `on_progress(UpdateProgress)` are
called from the worker thread: do not touch widgets or `project.conn` in them.
`predict` may run in another thread than the session's (a GUI worker): it reads the store on
a connection of its own, and an update finishing meanwhile swaps the predictor only between
two builds (`_lock`), never under a build.

A `segment` base (YOLO-seg) works the same way with polygons: a sample keeps the frame's
accepted polygons, and its boxes as their rectangles (4-point polygons: a box is drawn around
an object the mask should cover, and leaving it out would teach the adapter that the object
is background; the dataset builder skips boxes instead, because a dataset should not guess
masks); the update trains with ultralytics' segmentation loss, proposals are polygons, and
the adapter's score uses mask IoU (`segment_update.py`). Other tasks are refused.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import learning as repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import ModelVersion
from src.errors import ConfigError, MediaError, ModelError
from src.training.learning.adapters import AdapterMeta, AdapterStore
from src.training.learning.detector_data import DetectorSample
from src.training.learning.detector_update import (DETECT, DetectorUpdate,
                                                   DetectorUpdateResult, UpdateTask)
from src.training.learning.edits import EditCounts
from src.training.learning.samples import SampleStore
from src.training.learning.settings import LearnSettings
from src.training.learning.updater import (FINISHED, BackgroundUpdate, UpdateProgress,
                                           UpdateResult)

log = logging.getLogger(__name__)
SUPPORTED_TASKS = ("detect", "segment")
METRIC_NAME = "proposal_score"


@dataclass(frozen=True)
class SessionStatus:
    """What the status line shows."""

    session_id: int
    base: str                          # the base version's display name
    corrected_frames: int
    samples: int
    updating: bool
    update_queued: bool
    updates: int                       # finished updates so far
    last_update_at: str | None         # UTC ISO time of the last finished update
    last_val_metric: float | None      # its validation proposal score (1 - edits / shapes)
    last_base_metric: float | None     # the base's on the same frames
    adapter_in_use: bool
    reason: str                        # why the adapter is (not) in use, in words
    state: str                         # 'open' | 'promoted' | 'discarded'


@dataclass(frozen=True)
class FramePrediction:
    """What the session's model found on one captured frame (not stored yet)."""

    frame_id: int
    prediction: object                 # src.training.inference.results.Prediction
    image: np.ndarray


@dataclass(frozen=True)
class ProposalBatch:
    """`predict`'s answer: the predictions and the name of the model that made them."""

    model_name: str
    frames: tuple[FramePrediction, ...]

    @property
    def frame_ids(self) -> list[int]:
        return [f.frame_id for f in self.frames]


class LearningSession:
    def __init__(self, project: Project, record: repo.LearningSessionRecord,
                 base: ModelVersion, settings: LearnSettings, *,
                 on_progress: Callable[[UpdateProgress], None] | None = None,
                 on_update: Callable[[repo.LearningUpdate], None] | None = None) -> None:
        self.project, self.record, self.base, self.settings = project, record, base, settings
        self.folder = project.abspath(record.folder)
        self.samples = SampleStore(self.folder / "samples")
        self.adapters = AdapterStore(self.folder)
        self._on_update = on_update
        self._lock = threading.Lock()              # guards the predictors (built, swapped)
        self._base_lock = threading.Lock()         # the base module is loaded once
        self._predictor = None
        self._base_predictor = None
        self._base_module = None
        self._base_scores: dict = {}
        self._since_update = 0
        # AdamW's moments of the adapter in use, saved beside it: after a restart the next
        # update continues the same optimizer (a fresh Adam wrecked trained adapters)
        self._optimizer_state: dict | None = self.adapters.load_optimizer()
        self.source = sources_repo.get_source(project.conn, record.source_id)
        self.imgsz = session_imgsz(project, base, settings)
        self.class_names = _model_classes(project, base)
        self.task = update_task(base.task)
        self._update = BackgroundUpdate(self._run_update, budget_s=settings.budget_s,
                                        on_progress=on_progress, on_finished=self._finished,
                                        name=f"learning-update-{record.id}")

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, project: Project, source_id: int, base_ref: str | int = "active", *,
             settings: LearnSettings | None = None, **callbacks) -> "LearningSession":
        """The open session of this source and base, or a new one (`settings` apply to a
        new session; an existing one keeps those it was created with)."""
        from src.training.inference.loading import find_version, version_label

        base = find_version(project, base_ref, SUPPORTED_TASKS)
        if base.task not in SUPPORTED_TASKS:
            raise ModelError(f"learning from corrections supports detectors and segmenters; "
                             f"{version_label(base)} is a {base.task} model", field="base",
                             hint="pick a detect or segment model version")
        if sources_repo.get_source(project.conn, source_id) is None:
            raise MediaError(f"no source {source_id} in this project", field="source",
                             hint="see `python main.py info` for the sources")
        record = repo.find_open_session(project.conn, source_id, base.id)
        if record is None:
            settings = settings or LearnSettings()
            folder = Path("learning") / f"{source_id}-{base.id}-{uuid.uuid4().hex[:8]}"
            record = repo.add_session(project.conn, repo.LearningSessionRecord(
                source_id, base.id, version_label(base), base.task, folder.as_posix(),
                settings=settings.to_dict()))
        else:
            settings = LearnSettings.from_dict(record.settings)
        return cls(project, record, base, settings, **callbacks)

    @classmethod
    def existing(cls, project: Project, source_id: int, base_ref: str | int = "active",
                 **callbacks) -> "LearningSession | None":
        """The open session of this source and base, None when there is none."""
        from src.training.inference.loading import find_version

        base = find_version(project, base_ref, SUPPORTED_TASKS)
        if repo.find_open_session(project.conn, source_id, base.id) is None:
            return None
        return cls.open(project, source_id, base.id, **callbacks)

    # -- corrections -----------------------------------------------------------------------
    def frame_corrected(self, frame_id: int, edits: EditCounts | dict | None = None
                        ) -> repo.CorrectedFrame:
        """The user is done with this frame: its accepted boxes become a sample and its edit
        counts are stored (None: counted from the corrections the store recorded for the
        base on this frame). Every `update_every` frames an update is requested."""
        frame = frames_repo.get_frame(self.project.conn, frame_id)
        if frame is None or frame.source_id != self.record.source_id:
            raise MediaError(f"frame {frame_id} is not a frame of this session's source",
                             field="frame_id")
        counts = self._counts(frame_id, edits)
        boxes, classes, skipped, polygons = self._accepted_shapes(frame_id)
        arrays = {"boxes": boxes, "classes": classes}
        if self.task.name == "segment":
            from src.training.learning.segment_update import pack_polygons
            arrays.update(pack_polygons(polygons))
        self.samples.add(_sample_id(frame_id), arrays=arrays,
                         meta={"frame_id": frame_id, "image_path": frame.image_path,
                               "skipped_classes": skipped})
        stored = repo.record_corrected_frame(
            self.project.conn, repo.CorrectedFrame(self.record.id, frame_id, **counts))
        self._since_update += 1
        if self.settings.update_every and self._since_update >= self.settings.update_every:
            self.request_update()
        return stored

    def forget_frame(self, frame_id: int) -> None:
        """Take a frame out of the session (it is no longer a sample)."""
        self.samples.remove(_sample_id(frame_id))
        repo.remove_corrected_frame(self.project.conn, self.record.id, frame_id)

    def _counts(self, frame_id: int, edits) -> dict:
        if edits is None:
            return repo.correction_counts(self.project.conn, frame_id, f"model:{self.base.id}")
        counts = edits.as_dict() if isinstance(edits, EditCounts) else dict(edits)
        unknown = set(counts) - set(repo.EDIT_KINDS)
        if unknown:
            raise ConfigError(f"unknown edit kind(s) {sorted(unknown)}", field="edits",
                              hint=f"use {', '.join(repo.EDIT_KINDS)}")
        return counts

    def _accepted_shapes(self, frame_id: int):
        """(boxes, classes, skipped class names, polygons: a box as its rectangle)."""
        names = {c.id: c.name for c in classes_repo.list_classes(self.project.conn)}
        index = {n.lower(): i for i, n in enumerate(self.class_names)}
        boxes, classes, skipped, polygons = [], [], set(), []
        for ann in annotations_repo.list_annotations(self.project.conn, frame_id,
                                                     status="accepted"):
            if ann.kind not in ("box", "polygon"):
                continue
            name = names.get(ann.class_id, "")
            if name.lower() not in index:
                skipped.add(name)     # the base has no such class: it cannot learn it here
                continue
            boxes.append(_box_of(ann))
            classes.append(index[name.lower()])
            polygons.append(_polygon_of(ann))
        return (np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
                sorted(skipped), polygons)

    # -- updates ---------------------------------------------------------------------------
    def request_update(self) -> str:
        """Start an update now, or after the running one: 'started' | 'queued' | 'waiting'
        (fewer corrected frames than settings.min_samples)."""
        if len(self.samples) < self.settings.min_samples:
            return "waiting"
        self._base_model()            # loaded here: it needs this thread's connection
        self._since_update = 0
        return self._update.request()

    def cancel_update(self) -> None:
        self._update.cancel()

    @property
    def updating(self) -> bool:
        return self._update.running

    @property
    def pending_corrections(self) -> int:
        """Frames corrected since the last update was requested (none: nothing new to learn)."""
        return self._since_update

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no update runs or is queued (tests, CLI); False on timeout."""
        return self._update.wait(timeout)

    def _run_update(self, ctx) -> DetectorUpdateResult:
        adapter_dir = self.adapters.folder if self.adapters.exists() else None
        job = DetectorUpdate(self._base_module, self._load_samples, self.settings, self.imgsz,
                             adapter_dir, self._base_scores, self._optimizer_state,
                             task=self.task)
        return job(ctx)

    def _load_samples(self) -> list[DetectorSample]:
        from src.training.learning.segment_update import unpack_polygons

        out = []
        for record in self.samples.list():
            sample = self.samples.get(record.id)
            image = cv2.imread(str(self.project.abspath(sample.meta["image_path"])))
            if image is None:
                log.warning("frame image %s is missing; sample skipped", sample.meta["image_path"])
                continue
            out.append(DetectorSample(record.id, image, sample.arrays["boxes"],
                                      sample.arrays["classes"], unpack_polygons(sample.arrays)))
        return out

    def _finished(self, result: UpdateResult) -> None:
        """Worker thread: save a better adapter, record the update (own DB connection)."""
        # Under the predictors' lock: a predictor built meanwhile (a proposal worker) never
        # reads a half-saved adapter or the adapter without the update that says it is used.
        with self._lock:
            update = self._describe(result)
            conn = self.project.connect()
            try:
                update = repo.add_update(conn, update)
            finally:
                conn.close()
            self._predictor = None
        if self._on_update is not None:
            self._on_update(update)

    def _describe(self, result: UpdateResult) -> repo.LearningUpdate:
        update = repo.LearningUpdate(self.record.id, result.status, elapsed_s=result.elapsed_s)
        if result.status != FINISHED:
            update.reason = (f"update failed: {result.error}" if result.error
                             else "update cancelled")
            return update
        r: DetectorUpdateResult = result.state
        update.samples, update.epochs = r.samples, r.epochs
        update.val_metric, update.base_metric = r.val_metric, r.base_metric
        if r.adapted is None:
            update.reason = f"no adapter from this update ({r.reason})"
            return update
        update.used = r.better_than_base
        # the moments go with the adapter they trained: kept only when it is saved
        self._optimizer_state = r.optimizer_state if update.used else self._optimizer_state
        if update.used:
            self.adapters.save_model(r.adapted.model, self.settings.lora(), r.adapted.targets,
                                     AdapterMeta.now(f"model:{self.base.id}", r.val_metric,
                                                     self.task.metric_name, samples=r.samples,
                                                     base_metric=r.base_metric),
                                     r.adapted.trainable_prefixes)
            if self._optimizer_state is not None:
                self.adapters.save_optimizer(self._optimizer_state)
        update.reason = _reason(update, r.reason, self.task)
        return update

    # -- status and proposals --------------------------------------------------------------
    def status(self) -> SessionStatus:
        conn = self.project.conn
        record = repo.get_session(conn, self.record.id)
        updates = [u for u in repo.list_updates(conn, self.record.id) if u.status == FINISHED]
        last = updates[-1] if updates else None
        in_use = self._adapter_in_use()
        latest = repo.last_update(conn, self.record.id, status=None)
        if latest is None:
            reason = "no update yet: proposals come from the base model"
        elif latest.status != FINISHED or latest.samples == 0 or latest.epochs == 0:
            reason = latest.reason + ("; the previous adapter stays in use" if in_use else
                                      "; proposals come from the base model")
        else:
            reason = latest.reason
        return SessionStatus(self.record.id, self.record.base_ref,
                             len(repo.corrected_frames(conn, self.record.id)), len(self.samples),
                             self._update.running, self._update.pending, len(updates),
                             last.finished_at if last else None,
                             last.val_metric if last else None,
                             last.base_metric if last else None, in_use, reason, record.state)

    def _adapter_in_use(self, conn=None) -> bool:
        """The adapter on disk is in use unless the last trained update did worse."""
        if not self.adapters.exists():
            return False
        trained = [u for u in repo.list_updates(conn or self.project.conn, self.record.id)
                   if u.status == FINISHED and u.epochs > 0 and u.val_metric is not None]
        return not trained or trained[-1].used

    def predictor(self, project: Project | None = None):
        """A Predictor (src/training/inference) of base + adapter in use, else of the base.
        `project`: the same project on the calling thread's own connection, when that is not
        the session's thread."""
        with self._lock:
            if self._predictor is None:
                self._predictor = self._build_predictor(project or self.project)
            return self._predictor

    def base_predictor(self):
        """A Predictor of the base alone, at the session's size and thresholds (to compare
        base and adapter, e.g. for frame suggestions)."""
        with self._lock:
            if self._base_predictor is None:
                self._base_predictor = self._plain_predictor()
            return self._base_predictor

    def _plain_predictor(self, project: Project | None = None):
        from src.training.inference.loading import predictor_for

        return predictor_for(project or self.project, self.base, conf=self.settings.conf,
                             iou=self.settings.iou, imgsz=self.imgsz, device=self.settings.device)

    def _build_predictor(self, project: Project):
        from src.training.learning.detector_update import adapted_copy, merged_model

        predictor = self._plain_predictor(project)
        if self._adapter_in_use(project.conn):
            adapted = adapted_copy(self._base_model(project), self.settings,
                                   self.adapters.folder)
            predictor.model.model = merged_model(adapted)
            predictor.model.predictor = None
            predictor.model_name = f"{predictor.model_name} + adapter"
        return predictor

    def propose(self, frame_ids: list[int]):
        """Store proposals from `predictor()` on these frames (as the base's proposals:
        source model:<base id>); returns the ProposalWriter summary."""
        return self.store_proposals(self.predict(frame_ids))

    def predict(self, frame_ids: list[int], should_stop: Callable[[], bool] | None = None
                ) -> ProposalBatch:
        """What `predictor()` finds on these captured frames, nothing stored. Any thread may
        call it: it reads the store on a connection of its own. Frames deleted meanwhile, or
        of another source, are left out; `should_stop()` true before a frame: the frames done so far."""
        conn = self.project.connect()
        try:
            project = dataclasses.replace(self.project, conn=conn)
            predictor = self.predictor(project)
            found = []
            for frame_id in frame_ids:
                if should_stop is not None and should_stop():
                    break
                frame = frames_repo.get_frame(conn, frame_id)
                if frame is None or frame.source_id != self.record.source_id:
                    continue
                image = self._frame_image(frame)
                prediction = predictor.predict_one(image)
                prediction.frame_index = frame.frame_index
                found.append(FramePrediction(frame_id, prediction, image))
        finally:
            conn.close()
        return ProposalBatch(predictor.model_name, tuple(found))

    def _frame_image(self, frame) -> np.ndarray:
        path = self.project.abspath(frame.image_path)
        image = cv2.imread(str(path))
        if image is None:
            raise MediaError("the frame's image cannot be read", path=path,
                             hint="the file is missing or damaged; capture the frame again")
        return image

    def store_proposals(self, batch: ProposalBatch, frame_ids=None):
        """Store `predict`'s proposals (on the session's thread and connection), in one
        transaction; only on `frame_ids` when given, never on a frame deleted since.
        Returns the ProposalWriter summary."""
        from src.training.inference.run import ProposalWriter

        writer = ProposalWriter(self.project, self.source, self.base)
        for item in batch.frames:
            if frame_ids is not None and item.frame_id not in frame_ids:
                continue
            frame = frames_repo.get_frame(self.project.conn, item.frame_id)
            if frame is None:
                continue               # deleted meanwhile: not re-captured from the image
            item.prediction.frame_index = frame.frame_index
            writer.add(item.prediction, item.image)
        return writer.commit()

    def _base_model(self, project: Project | None = None):
        """The base's torch module, loaded once through the verified predictor path."""
        with self._base_lock:
            if self._base_module is None:
                from src.training.inference.loading import predictor_for

                loaded = predictor_for(project or self.project, self.base, device="cpu")
                self._base_module = loaded.model.model.float().eval()
            return self._base_module

    # -- ending ----------------------------------------------------------------------------
    def promote(self, name: str) -> ModelVersion:
        """Register base + adapter (merged) as a new version whose parent is the base."""
        from src.training.learning.promote import promote_adapter

        self._update.wait()
        if not self._adapter_in_use():
            raise ModelError("this session has no adapter in use to promote",
                             hint="correct more frames and update; " + self.status().reason)
        version = promote_adapter(self, name)
        self.record = repo.close_session(self.project.conn, self.record.id, "promoted", version.id)
        return version

    def discard(self) -> None:
        """Forget the adapter and the samples; the session is closed as discarded."""
        self._update.close()
        self.adapters.discard()
        self.samples.clear()
        self.record = repo.close_session(self.project.conn, self.record.id, "discarded")
        with self._lock:
            self._predictor = None

    def close(self, timeout: float | None = 30.0) -> bool:
        """Cancel a running update and wait for its thread (the session stays open on disk)."""
        return self._update.close(timeout)


def _sample_id(frame_id: int) -> str:
    return f"frame-{frame_id}"


def update_task(task: str) -> UpdateTask:
    """What an update trains for a base of this task (segment_update.SEGMENT or DETECT)."""
    if task == "segment":
        from src.training.learning.segment_update import SEGMENT
        return SEGMENT
    return DETECT


def _box_of(ann) -> list[float]:
    if ann.kind == "box":
        return [float(v) for v in ann.geometry]
    xs, ys = [p[0] for p in ann.geometry], [p[1] for p in ann.geometry]
    return [min(xs), min(ys), max(xs), max(ys)]


def _polygon_of(ann) -> np.ndarray:
    """A polygon's points; a box's rectangle as a 4-point polygon."""
    if ann.kind == "box":
        x1, y1, x2, y2 = (float(v) for v in ann.geometry)
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
    return np.array(ann.geometry, np.float32).reshape(-1, 2)


def _reason(update: repo.LearningUpdate, stop: str, task: UpdateTask = DETECT) -> str:
    figures = f"{update.val_metric:.2f} vs base {update.base_metric:.2f}"
    score = "mask proposal score" if task.name == "segment" else "proposal score"
    if update.used:
        return (f"adapter in use: validation {score} {figures} on the corrected frames "
                f"({update.epochs} epochs, {stop})")
    return (f"adapter not used: it did worse than the base on the corrected frames' validation "
            f"split ({figures}); proposals come from the base model")


def session_imgsz(project: Project, base: ModelVersion, settings: LearnSettings) -> int:
    """settings.imgsz, else the size the base was trained at (320 when it does not say)."""
    from src.training.models import ModelManager
    from src.training.models.export import train_imgsz

    if settings.imgsz:
        return settings.imgsz
    try:
        return train_imgsz(ModelManager(project), base, default=320)
    except (OSError, ValueError):
        return 320


def _model_classes(project: Project, base: ModelVersion) -> list[str]:
    if base.classes:
        return [str(c) for c in base.classes]
    raise ModelError(f"model version {base.id} records no class names", field="base",
                     hint=f"trust it first: `python main.py models trust {base.id}`")
