"""Wires the Segment tool, Track and LIT-LoRA into the main window: actions (one separated
toolbar group), the dock panel, the overlay, and the jobs of the SAM worker thread.

The model is loaded when the tool is first chosen or Load model is clicked, in the worker;
from then on every frame the user opens is embedded there in the background (while a track
is open, the next frames too), the latest request replacing the queued ones, whether or not
the Segment tool is on; each click runs the decoder on the GUI thread from the cached
embedding. A track can run with a registered adapter version (kind sam_adapter), and an
object's LIT-LoRA adapter can be registered as one. Without weights every SAM action is
disabled and says which file to put where. `LABELLOOP_SAM_UNTRAINED=1` (tests,
screenshots) opts in to the architecture without weights; `LABELLOOP_SAM_IMGSZ` sets the
input size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QDockWidget, QInputDialog, QScrollArea

from src.data.video import open_media
from src.db.project import Project
from src.errors import LabelLoopError
from src.gui.guard import reports_errors
from src.gui.sam.overlay import MaskOverlay
from src.gui.sam.panel import SamPanel
from src.gui.sam.segment_tool import SegmentGestures
from src.gui.sam.worker import start_worker
from src.training.sam.polygon import mask_to_polygon, polygon_to_mask
from src.training.sam.prompts import MaskCandidate, Prompt
from src.training.sam.weights import DEFAULT_MODEL, SamWeightsMissing, find_weights

CLICKS_ONLY_MODEL = "mobile_sam"
PREFETCH_FRAMES = 2          # while tracking: the frames after the one opened, embedded ahead


@dataclass
class TrackState:
    """The object being tracked: its TrackSession (used only in the worker), LIT-LoRA."""
    session: object
    source: object
    object_id: int
    class_id: int
    start: int
    last: int
    reader: object
    lit: object = None
    prompts: dict = field(default_factory=dict)        # frame index -> correction Prompt


class _LearnBridge(QObject):
    """LIT-LoRA callbacks arrive on its update thread; these signals queue them to the GUI."""
    progress = pyqtSignal(object)
    finished = pyqtSignal(object)


class SamTools(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window, self.view = window, window.annotator.view
        self.session = None
        self.weights, self.problem = None, "open a project"
        self.engine, self.cache, self._loading = None, None, False
        self.thread = self.worker = None
        self.prompt, self.candidates, self.cand_index = Prompt(), [], 0
        self.prompt_at: tuple[int, int] | None = None
        self.track: TrackState | None = None
        self.compare = None                               # (index, original, adapted)
        self.lit_settings = None          # LitLoraSettings; None: the defaults
        self.adapter_version = None       # (ModelVersion, decoder) tracking uses; None: base
        self._registering = False
        self.gestures = SegmentGestures(self.view)
        self.overlay = MaskOverlay(self.view.scene())
        self.bridge = _LearnBridge(self)
        self.panel = SamPanel()
        self._build_actions()
        self._dock()
        self._connect()
        self._update_enabled()

    # ---- building -------------------------------------------------------------------------
    def _build_actions(self) -> None:
        w = self.window
        self.segment_action = QAction("&Segment (SAM)", w)
        self.segment_action.setObjectName("action_mode_segment")
        self.segment_action.setCheckable(True)
        self.segment_action.setShortcut(QKeySequence("S"))
        self.track_action = QAction("Track with SAM &2", w)
        self.track_action.setObjectName("action_sam_track")
        self.track_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        for action in (self.segment_action, self.track_action):
            w.addAction(action)
        menu = next((a.menu() for a in w.menuBar().actions() if a.text() == "&Tools"), None)
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.segment_action)
            menu.addAction(self.track_action)
        w.mode_group.addAction(self.segment_action)
        bar = w.toolbar
        bar.addSeparator()                 # the SAM group, apart from the drawing tools
        bar.addAction(self.segment_action)
        bar.addAction(self.track_action)
        for action, name in ((self.segment_action, "toolbar_mode_segment"),
                             (self.track_action, "toolbar_sam_track")):
            button = bar.widgetForAction(action)
            if button is not None:
                button.setObjectName(name)

    def _dock(self) -> None:
        dock = QDockWidget("Segment Anything", self.window)
        dock.setObjectName("samDock")
        scroll = QScrollArea(dock)
        scroll.setObjectName("samPanelScroll")
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.panel)
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _connect(self) -> None:
        p, g = self.panel, self.gestures
        self.segment_action.toggled.connect(self._on_segment_toggled)
        self.track_action.triggered.connect(lambda _c=False: self.start_track())
        p.track_button.clicked.connect(lambda _c=False: self.start_track())
        p.load_button.clicked.connect(lambda _c=False: self._load())
        p.register_button.clicked.connect(lambda _c=False: self.register_adapter())
        p.adapter_button.clicked.connect(lambda _c=False: self.choose_adapter_version())
        p.stop_button.clicked.connect(lambda _c=False: self.stop())
        p.end_button.clicked.connect(lambda _c=False: self.end_track())
        p.update_button.clicked.connect(lambda _c=False: self.update_now())
        p.discard_button.clicked.connect(lambda _c=False: self.discard_adapter())
        p.use_adapted.clicked.connect(lambda _c=False: self.use_adapted())
        p.use_original.clicked.connect(lambda _c=False: self.use_original())
        p.learn_check.toggled.connect(self._on_learn_toggled)
        g.point_added.connect(self._on_point_added)
        g.box_drawn.connect(self._on_box_drawn)
        g.accept_requested.connect(self.accept)
        g.discard_requested.connect(self.discard)
        g.cycle_requested.connect(self.cycle)
        self.window.player.frame_shown.connect(self._on_frame_shown)
        self.bridge.progress.connect(self._on_learn_progress)
        self.bridge.finished.connect(self._on_learn_finished)

    # ---- project and model ------------------------------------------------------------------
    def set_session(self, session) -> None:
        self.end_track()
        self.discard()
        self.session = session
        self.engine = self.cache = self.adapter_version = None
        self.panel.adapter_label.setText("tracking with the base decoder")
        self.panel.embed_label.setText("")
        self.weights, self.problem = self._find_weights(session)
        self.panel.status_label.setText(self.problem or f"{self.weights.name}: choose Segment "
                                                        f"or Load model to load it"
                                                        + self._untrained_note())
        if session is None or self.problem:
            self.segment_action.setChecked(False)
        self._update_enabled()

    @staticmethod
    def _find_weights(session):
        if session is None:
            return None, "Segment Anything: open a project"
        untrained = os.environ.get("LABELLOOP_SAM_UNTRAINED") == "1"
        base = session.project.base_weights_dir
        try:
            return find_weights(DEFAULT_MODEL, base, untrained=untrained,
                                allow_download=False), None
        except SamWeightsMissing as exc:
            problem = exc.message
        try:                              # MobileSAM: clicks only, no tracking
            return find_weights(CLICKS_ONLY_MODEL, base, allow_download=False), None
        except SamWeightsMissing:
            return None, f"{problem}; mobile_sam.pt there gives clicks without tracking"

    def _untrained_note(self) -> str:
        return " (UNTRAINED weights: testing only)" if self.weights and self.weights.untrained \
            else ""

    def _update_enabled(self) -> None:
        usable = self.session is not None and self.problem is None
        p = self.panel
        self.segment_action.setEnabled(usable)
        tip = self.problem or "Click: + point, right click: − point, drag: box; Enter keeps " \
                              "the mask as a polygon, Esc discards, Tab the next candidate"
        self.segment_action.setToolTip(tip)
        ready = usable and self.engine is not None
        tracking = self.track is not None
        self.track_action.setEnabled(ready and self.engine.is_sam2)
        self.track_action.setToolTip(self.problem or "Track the selected shape with SAM 2")
        p.track_button.setEnabled(ready and self.engine.is_sam2)
        p.track_frames.setEnabled(usable)
        p.load_button.setEnabled(usable and self.engine is None and not self._loading)
        p.adapter_button.setEnabled(ready and self.engine.is_sam2)
        p.stop_button.setEnabled(tracking)
        p.end_button.setEnabled(tracking)
        p.learn_box.setVisible(tracking and self.engine is not None and self.engine.is_sam2)
        lit = self.track.lit if tracking else None
        p.update_button.setEnabled(lit is not None and len(lit.samples) > 0)
        p.discard_button.setEnabled(lit is not None and lit.decoder is not None)
        p.register_button.setEnabled(lit is not None and lit.adapters.exists()
                                     and not self._registering)
        p.use_adapted.setEnabled(self.compare is not None)
        p.use_original.setEnabled(self.compare is not None)

    def _ensure_worker(self) -> None:
        if self.worker is None:
            self.thread, self.worker = start_worker(self)
            self.worker.done.connect(self._on_job_done)
            self.worker.failed.connect(self._on_job_failed)
            self.worker.progress.connect(self._on_job_progress)

    def _load(self) -> None:
        if self.engine is not None or self._loading or self.weights is None:
            return
        from src.training.sam.engine import SamEngine
        weights = self.weights
        size = int(os.environ.get("LABELLOOP_SAM_IMGSZ", "1024"))
        self._loading = True
        self._ensure_worker()
        self.panel.status_label.setText(f"loading {weights.name}…")
        self.worker.submit("load", lambda w: SamEngine.load(weights, image_size=size))

    # ---- frames and embeddings ----------------------------------------------------------
    def _position(self) -> tuple[int, int] | None:
        return self.window.annotator.position

    def _on_frame_shown(self, index: int, _image) -> None:
        if self.prompt_at is not None and self.prompt_at != self._position():
            self.discard()
        self.compare = None
        if self.engine is not None:
            self._request_embedding()
        self._update_enabled()

    def _request_embedding(self) -> None:
        """Embed the frame on screen in the background (and, while tracking, the next ones);
        queued requests for other frames are dropped: the latest one wins."""
        position, image = self._position(), self.window.player.image
        if self.cache is None or position is None or image is None:
            return
        self.worker.drop_pending("embed:")
        self.worker.drop_pending("prepare:")
        cache, frame, engine = self.cache, image.copy(), self.engine

        def embed(_worker):
            emb = cache.get_or_compute(*position, lambda: frame)
            engine.prepare_frame(emb)        # the first click then costs what later ones do
            return emb
        if position in cache:
            self.panel.embed_label.setText(f"frame {position[1]}: embedding ready")
            self.worker.submit("prepare:", embed)         # memory or disk hit: milliseconds
        else:
            self.panel.embed_label.setText(f"embedding frame {position[1]}…")
            self.worker.submit(f"embed:{position[0]}:{position[1]}", embed)
        self._prefetch(position)

    def _prefetch(self, position: tuple[int, int]) -> None:
        state, cache = self.track, self.cache
        if state is None or state.source.id != position[0]:
            return
        last = min(state.source.frame_count - 1, position[1] + PREFETCH_FRAMES)
        for index in range(position[1] + 1, last + 1):
            key = (position[0], index)
            if key not in cache:
                self.worker.submit(f"embed:{key[0]}:{key[1]}", lambda w, i=index, k=key:
                                   cache.get_or_compute(*k, lambda: state.reader.read(i)))

    def _ready_text(self) -> str:
        return f"{self.engine.weights.name} ready{self._untrained_note()}"

    # ---- worker results -----------------------------------------------------------------
    def _on_job_done(self, tag: str, result) -> None:
        if tag == "load":
            self._on_loaded(result)
        elif tag.startswith("embed:"):
            if tag == "embed:%d:%d" % (self._position() or (-1, -1)):
                self.panel.embed_label.setText(f"frame {tag.split(':')[2]}: embedding ready")
            if self.prompt_at == self._position() and not self.prompt.empty:
                self._decode()
        elif tag in ("track", "correct", "adopt"):
            self._on_tracked(tag, result)
        elif tag == "compare":
            self._on_compared(result)
        elif tag == "register":
            self._on_registered(result)
        elif tag == "adapter":
            self._on_adapter_loaded(result)
        self._update_enabled()

    def _on_job_failed(self, tag: str, exc) -> None:
        if tag == "load":
            self._loading = False
        self._registering = self._registering and tag != "register"
        if tag == "adapter":
            self._on_adapter_loaded(self.adapter_version)
        self.panel.status_label.setText(f"{tag.split(':')[0]} failed: {exc}")
        self._update_enabled()
        if self.session is not None:
            self.session.report_error(exc if isinstance(exc, LabelLoopError)
                                      else LabelLoopError(f"Segment Anything: {exc}"))

    def _on_job_progress(self, tag: str, done: int, total: int) -> None:
        self.panel.progress.setRange(0, max(1, total))
        self.panel.progress.setValue(done)

    def _on_loaded(self, engine) -> None:
        from src.training.sam.loading import project_cache
        self._loading = False
        if self.session is None:
            return
        self.engine = engine
        self.cache = project_cache(self.session.project, engine)
        self.panel.status_label.setText(self._ready_text())
        self._request_embedding()

    # ---- the Segment tool -------------------------------------------------------------
    def _on_segment_toggled(self, on: bool) -> None:
        self.gestures.set_active(on)
        if on:
            self._load()
            self._request_embedding()
        else:
            self.discard()
        self._update_enabled()

    def _on_point_added(self, x: float, y: float, positive: bool) -> None:
        position = self._position()
        if position is None:
            return
        if self._tracked_frame(position):
            self._correct(position[1], x, y, positive)
            return
        if self.prompt_at != position:
            self.prompt = Prompt()
        self.prompt, self.prompt_at = self.prompt.with_point(x, y, positive), position
        self._decode()

    def _on_box_drawn(self, box: list) -> None:
        position = self._position()
        if position is None or self._tracked_frame(position):
            return
        if self.prompt_at != position:
            self.prompt = Prompt()
        self.prompt = Prompt(list(self.prompt.points), box)
        self.prompt_at = position
        self._decode()

    def _decode(self) -> None:
        """Masks for the prompt from the cached embedding (decoder only, this thread)."""
        emb = self.cache.get(*self.prompt_at) if self.cache is not None else None
        if emb is None:
            self.overlay.show(None, self.prompt.points, self.prompt.box)
            if self.engine is None:
                self._load()
            else:
                self._request_embedding()
            return
        self.candidates = self.engine.segment(emb, self.prompt)
        self.cand_index = 0
        self._show_candidate()

    def _show_candidate(self) -> None:
        if not self.candidates:
            self.overlay.show(None, self.prompt.points, self.prompt.box)
            self.panel.candidate_label.setText("")
            return
        cand: MaskCandidate = self.candidates[self.cand_index]
        self.overlay.show(cand.mask, self.prompt.points, self.prompt.box)
        self.panel.candidate_label.setText(
            f"candidate {self.cand_index + 1}/{len(self.candidates)} · predicted IoU "
            f"{cand.iou:.2f} (Tab: next, Enter: keep, Esc: discard)")

    def cycle(self) -> None:
        if self.candidates:
            self.cand_index = (self.cand_index + 1) % len(self.candidates)
            self._show_candidate()

    @reports_errors
    def accept(self) -> None:
        """Enter: the candidate on screen becomes a polygon of the current class (through the
        view's own shape_drawn, so capture-on-draw, undo and selection are the usual ones);
        on a corrected tracked frame, its proposal is accepted."""
        position = self._position()
        if position is not None and self._tracked_frame(position):
            self._accept_tracked(position[1])
            return
        if not self.candidates or self.prompt_at != position:
            return
        polygon = mask_to_polygon(self.candidates[self.cand_index].mask,
                                  self.panel.tolerance.value())
        if polygon is None:
            self.panel.candidate_label.setText("the mask is empty: add points")
            return
        self.discard()
        self.view.shape_drawn.emit("polygon", polygon)

    def discard(self) -> None:
        self.prompt, self.prompt_at, self.candidates, self.cand_index = Prompt(), None, [], 0
        self.overlay.clear()
        self.panel.candidate_label.setText("")

    # ---- tracking -----------------------------------------------------------------------
    def _selected_shape(self):
        ids = self.view.selected_ids()
        anns = [a for a in self.window.annotator.anns if a.id in ids and a.kind != "tag"]
        if len(anns) != 1:
            raise LabelLoopError("select the one shape to track (or keep a mask with Enter)",
                                 field="Track")
        return anns[0]

    @reports_errors
    def start_track(self) -> None:
        from src.training.sam.session import TrackSession
        if self.engine is None or self.session is None:
            return
        ann, source = self._selected_shape(), self.window.player.source
        frame = self.window.annotator.frame
        index = self.window.annotator.position[1]
        self.end_track()
        reader = open_media(source.path, cache_bytes=0)
        session = TrackSession(self.cache, source.id, source.frame_count, reader.read)
        last = min(source.frame_count - 1, index + self.panel.track_frames.value())
        self.track = TrackState(session, source, ann.id, ann.class_id, index, last, reader)
        self.track.lit = self._make_lit(source, ann.id)
        if self.adapter_version is not None:
            session.tracker.decoder = self.adapter_version[1]
        self._on_learn_toggled(self.panel.learn_check.isChecked())
        geometry = ann.geometry if ann.kind == "polygon" else _box_polygon(ann.geometry)
        mask = polygon_to_mask(geometry, frame.height, frame.width)
        state, tolerance = self.track, self.panel.tolerance.value()

        def job(w):
            state.session.start_from_mask(index, mask)
            return self._propagate_and_store(w, state, [], tolerance)
        self.worker.submit("track", job)
        self.panel.status_label.setText(
            f"tracking shape {ann.id} over frames {index + 1}–{last}…")
        self._update_enabled()

    def _propagate_and_store(self, w, state: TrackState, first: list, tolerance: float):
        """(Worker thread.) Propagate to the end of the track and store the proposals."""
        from src.training.sam.store import store_tracked
        tracked = first + state.session.propagate(
            state.last, should_stop=w.cancel_event.is_set,
            progress=lambda d, t: w.progress.emit("track", d, t))
        with Project.open(self.session_root, create=False) as project:
            stored = store_tracked(project, state.source, state.class_id, state.object_id,
                                   self.engine.weights.name, tracked, state.reader.read,
                                   tolerance=tolerance)
        return tracked, stored, w.cancel_event.is_set()

    @property
    def session_root(self):
        return self.session.project.root

    def _on_tracked(self, tag: str, result) -> None:
        tracked, stored, stopped = result
        if tag == "correct" and tracked:
            self.overlay.show(tracked[0].mask, self.track.prompts.get(tracked[0].frame_index,
                                                                      Prompt()).points)
        self.panel.status_label.setText(
            f"{'stopped: ' if stopped else ''}tracked {len(tracked)} frame(s), "
            f"{stored.proposals} proposal(s)")
        self.session.frames_changed.emit()
        self.session.annotations_changed.emit()
        lit = self.track.lit if self.track else None
        if tag == "correct" and lit is not None and self.panel.learn_check.isChecked():
            state = lit.request_update()
            self.panel.learn_label.setText(f"update {state} ({len(lit.samples)} samples)")

    def _tracked_frame(self, position) -> bool:
        t = self.track
        return (t is not None and position[0] == t.source.id and position[1] != t.start
                and position[1] in t.session.masks)

    def _correct(self, index: int, x: float, y: float, positive: bool) -> None:
        """A point on a tracked frame corrects it and re-propagates from there."""
        state, tolerance = self.track, self.panel.tolerance.value()
        prompt = state.prompts.get(index, Prompt()).with_point(x, y, positive)
        state.prompts[index] = prompt
        self.overlay.show(None, prompt.points)
        self.worker.cancel()          # a running propagation stops; this one redoes it

        def job(w):
            fixed = state.session.correct(index, prompt)
            return self._propagate_and_store(w, state, [fixed], tolerance)
        self.worker.submit("correct", job)
        self.panel.status_label.setText(f"correcting frame {index}…")

    def _accept_tracked(self, index: int) -> None:
        from src.training.sam.store import track_source
        source = track_source(self.engine.weights.name, self.track.object_id)
        ids = [a.id for a in self.window.annotator.anns
               if a.source == source and a.status == "proposed"]
        if ids:
            self.session.accept_proposals(ids)
        self.overlay.clear()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def end_track(self) -> None:
        if self.track is None:
            return
        self.stop()
        state, self.track = self.track, None
        if state.lit is not None:
            state.lit.close()
        if self.worker is not None:
            self.worker.submit("close", lambda w: state.reader.close())
        self.compare = None
        self._update_enabled()

    # ---- LIT-LoRA ---------------------------------------------------------------------
    def _make_lit(self, source, object_id: int):
        from src.training.sam.lit_lora import LitLora
        if not self.engine.is_sam2:
            return None
        lit = LitLora(self.engine, LitLora.folder_for(self.session_root, source.id, object_id),
                      base_ref=self.engine.key, settings=self.lit_settings,
                      on_progress=self.bridge.progress.emit,
                      on_finished=self.bridge.finished.emit)
        if lit.decoder is not None:
            meta = lit.adapters.meta()
            self.panel.learn_label.setText(f"adapter reloaded ({meta.samples} samples, val IoU "
                                           f"{meta.metric or 0:.2f}), not in use yet")
        return lit

    def _on_learn_toggled(self, on: bool) -> None:
        if self.track is not None and self.track.lit is not None:
            self.track.session.on_correction = self.track.lit.add_correction if on else None

    def update_now(self) -> None:
        if self.track is not None and self.track.lit is not None:
            state = self.track.lit.request_update()
            self.panel.learn_label.setText(f"update {state} ({len(self.track.lit.samples)} "
                                           f"samples)")

    def _on_learn_progress(self, p) -> None:
        self.panel.learn_label.setText(
            f"learning: epoch {p.epoch + 1}/{p.max_epochs}, val IoU "
            f"{(p.val_metric or 0):.2f} (best {(p.best or 0):.2f})")

    def _on_learn_finished(self, result) -> None:
        state = self.track
        if state is None or state.lit is None:
            return
        summary = state.lit.last_summary
        outcome = summary.outcome if summary else None
        text = f"update {result.status}"
        if outcome is not None:
            text += (f": {summary.samples} samples, {outcome.epochs} epochs ({outcome.reason}), "
                     f"best val IoU {(outcome.best_metric or 0):.2f}")
        self.panel.learn_label.setText(text + ("; adapter ready" if state.lit.decoder else ""))
        position = self._position()
        if state.lit.decoder is not None and position and position[1] in state.session.masks:
            self._compare(position[1])
        self._update_enabled()

    def _compare(self, index: int) -> None:
        state = self.track

        def job(w):
            emb = state.session.embedding(index)
            tracker = state.session.tracker
            return index, tracker.preview(index, emb, None), \
                tracker.preview(index, emb, state.lit.decoder)
        self.worker.submit("compare", job)

    def _on_compared(self, result) -> None:
        index, original, adapted = result
        self.compare = result
        self.overlay.show(adapted.mask, compare=original.mask)
        self.panel.compare_label.setText(
            f"frame {index}: original (orange) IoU {original.confidence:.2f} · adapted (blue) "
            f"IoU {adapted.confidence:.2f}")
        if adapted.confidence >= self.panel.auto_accept.value():
            self.use_adapted()

    def use_adapted(self) -> None:
        """Track from the compared frame on with the adapted decoder."""
        if self.compare is None or self.track is None:
            return
        index, state, tolerance = self.compare[0], self.track, self.panel.tolerance.value()
        decoder = state.lit.decoder
        self.compare = None
        self.overlay.clear()

        def job(w):
            state.session.tracker.decoder = decoder
            state.session.restart_after(index - 1)
            return self._propagate_and_store(w, state, [], tolerance)
        self.worker.submit("adopt", job)
        self.panel.status_label.setText(f"re-tracking from frame {index} with the adapter…")
        self.panel.compare_label.setText("adapter in use")
        self._update_enabled()

    def use_original(self) -> None:
        if self.track is None:
            return
        state = self.track
        self.compare = None
        self.overlay.clear()
        self.worker.submit("original", lambda w: setattr(state.session.tracker, "decoder", None))
        self.panel.compare_label.setText("original decoder in use")
        self._update_enabled()

    def discard_adapter(self) -> None:
        if self.track is None or self.track.lit is None:
            return
        state = self.track
        state.lit.discard()
        self.worker.submit("original", lambda w: setattr(state.session.tracker, "decoder", None))
        self.compare = None
        self.overlay.clear()
        self.panel.learn_label.setText("adapter discarded")
        self._update_enabled()

    # ---- adapters as model versions ------------------------------------------------------
    @reports_errors
    def register_adapter(self) -> None:
        """Register the tracked object's LIT-LoRA adapter as a sam_adapter model version (its
        base hashed in the worker). An untrained base is accepted only under the explicit
        LABELLOOP_SAM_UNTRAINED opt-in that loaded it, and is marked so."""
        state, engine = self.track, self.engine
        if state is None or state.lit is None or not state.lit.adapters.exists():
            return
        name, ok = QInputDialog.getText(self.window, "Register SAM adapter",
                                        "Name of the model version (empty: automatic):")
        if not ok:
            return
        root, folder = self.session_root, state.lit.adapters.folder
        learned = {"project": self.session.project.root.name, "source": state.source.name,
                   "source_id": state.source.id, "object_id": state.object_id}

        def job(w):
            from src.training.models import ModelManager
            from src.training.models.sam_adapter import SamBase, register_sam_adapter
            base = SamBase.of(engine.weights, engine.image_size)
            with Project.open(root, create=False) as project:
                return register_sam_adapter(ModelManager(project), folder, base, learned,
                                            name=name.strip() or None,
                                            allow_untrained=engine.weights.untrained)
        self._registering = True
        self.worker.submit("register", job)
        self.panel.learn_label.setText("registering the adapter…")
        self._update_enabled()

    def _on_registered(self, version) -> None:
        self._registering = False
        self.panel.learn_label.setText(f"registered as model version {version.id} "
                                       f"({version.display_name}): see Models…")
        if self.session is not None:
            self.window.status.show_active_models(self.session)

    @reports_errors
    def choose_adapter_version(self) -> None:
        """Pick a registered sam_adapter version (or the base decoder) to track with."""
        from src.training.models import ModelManager
        from src.training.models.sam_adapter import SAM_ADAPTER_TASK
        if self.engine is None or self.session is None:
            return
        versions = ModelManager(self.session.project).list(SAM_ADAPTER_TASK)
        if not versions:
            raise LabelLoopError("no SAM adapter is registered in this project yet",
                                 field="adapter", hint="track with 'Learn from corrections' "
                                 "on, update, then Register as model version…")
        versions.sort(key=lambda v: not v.is_active)
        labels = ["the base decoder (no adapter)"] + [
            f"{v.display_name}{' (active)' if v.is_active else ''} · id {v.id}" for v in versions]
        choice, ok = QInputDialog.getItem(self.window, "Track with an adapter",
                                          "SAM adapter version:", labels, 1, False)
        if not ok:
            return
        chosen = versions[labels.index(choice) - 1] if choice != labels[0] else None
        root, engine, state = self.session_root, self.engine, self.track

        def job(w):
            from src.training.models.sam_adapter import load_adapter_decoder
            loaded = None
            if chosen is not None:
                with Project.open(root, create=False) as project:
                    loaded = load_adapter_decoder(ModelManager(project), chosen.id, engine)
            if state is not None:
                state.session.tracker.decoder = loaded[1] if loaded else None
            return loaded
        self.worker.submit("adapter", job)
        self.panel.adapter_label.setText("loading the adapter…")

    def _on_adapter_loaded(self, loaded) -> None:
        self.adapter_version = loaded
        self.panel.adapter_label.setText(
            f"tracking with adapter version {loaded[0].id} ({loaded[0].display_name})"
            if loaded else "tracking with the base decoder")

    # ---- shutdown -----------------------------------------------------------------------
    def shutdown(self) -> None:
        """End the track and stop the worker thread (waits for the job in progress)."""
        self.end_track()
        if self.worker is not None:
            self.worker.stop()
            self.thread.quit()
            self.thread.wait()
            self.thread = self.worker = None


def _box_polygon(box: list) -> list:
    x1, y1, x2, y2 = box
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
