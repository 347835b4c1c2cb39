"""Learn from my corrections, in the window: a toggle opens the learning session of the
source on screen and the base picked beside it (an active detector or segmenter;
src/training/learning/session.py); leaving a frame whose shapes were edited reports it as
corrected; a captured frame with no shapes yet (frame tags are not shapes) gets
proposals from the session's model (base + adapter in use) when it is shown; Update now,
Promote and Discard act on the session. Updates run in the core's own thread: its callbacks
reach the widgets through `LearningBridge` signals, never directly. Proposals run in a
worker (src/gui/learning_proposals.py), one job at a time: frames shown meanwhile wait as one
request (the latest wins), and automatic proposals land only on a frame still without shapes
when they are stored."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QInputDialog, QLabel, QToolBar

from src.db import annotations as annotations_repo
from src.db import learning as learning_repo
from src.db import model_versions as model_repo
from src.errors import LabelLoopError
from src.gui import dialogs
from src.gui.guard import reports_errors
from src.gui.learning_proposals import ProposalJobs, ProposalRequest

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow

LOOP_ACTIONS = ("learn_update", "learn_promote", "learn_discard", "learn_propose")
PAUSE_MS = 20_000     # no edit and no frame change for this long: the user paused
BASE_TASKS = ("detect", "segment")        # what a learning session can adapt
PROPOSING = "Proposing…"                   # the status bar while a proposal job runs


class LearningBridge(QObject):
    """Lives in the GUI thread; the core calls `progress`/`finished` from its update thread
    and Qt queues the signals to the GUI thread."""
    progress = pyqtSignal(object)           # UpdateProgress
    finished = pyqtSignal(object)           # LearningUpdate


def base_problem(conn) -> Optional[str]:
    """Why the loop cannot start (no active detector or segmenter), or None."""
    if active_bases(conn):
        return None
    return ("no active detector or segmenter: train one (Training › Train model…) or "
            "activate a version")


def active_bases(conn) -> list:
    """The active versions a session can adapt: the detector first, then the segmenter."""
    found = [m for m in model_repo.list_model_versions(conn)
             if m.is_active and m.task in BASE_TASKS]
    return sorted(found, key=lambda m: BASE_TASKS.index(m.task))


class LearningLoop(QObject):
    """The Learn menu's loop actions, the toolbar toggle and its status label."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.learner = None                      # the open LearningSession
        self.settings = None                     # LearnSettings of a new session (None: defaults)
        self.bridge = LearningBridge(self)
        self.bridge.progress.connect(self._on_bridge_progress)
        self.bridge.finished.connect(self._on_bridge_finished)
        self.status_label = QLabel("")
        self.status_label.setObjectName("learningStatus")
        self.status_label.setContentsMargins(8, 0, 8, 0)
        self.base_combo = QComboBox()
        self.base_combo.setObjectName("learningBase")
        # version names are long ('detect-20261203-131653-mAP50-95=0.737'): a fixed width
        # keeps Update/Promote/Discard on the row; the tooltip has the whole name
        self.base_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.base_combo.setMinimumContentsLength(24)
        self.base_combo.activated.connect(self._on_base_combo_activated)
        self._base_action = None                 # the toolbar's action holding the picker
        self._frame: Optional[int] = None        # captured frame on screen (its id)
        self._edited = False                     # its shapes changed while on screen
        self._proposing = False                  # storing proposals: not the user's edit
        self.proposals = ProposalJobs(self)
        self.proposals.ended.connect(self._on_proposals_ended)
        self._next_request: Optional[ProposalRequest] = None   # asked while a job runs
        self._progress_text = ""
        self._looked_for: set[int] = set()       # sources checked for an open session
        # After the window's own slot: the annotator knows the frame shown by then.
        window.player.frame_shown.connect(self._on_player_frame_shown)
        # "When the user pauses": after PAUSE_MS without an edit or a frame change, the frames
        # corrected since the last update start an update.
        self.pause_timer = QTimer(self)
        self.pause_timer.setSingleShot(True)
        self.pause_timer.setInterval(PAUSE_MS)
        self.pause_timer.timeout.connect(self._on_pause_timer_timeout)
        slots = {"learn_toggle": None, "learn_update": self.update_now,
                 "learn_promote": self.promote, "learn_discard": self.discard,
                 "learn_propose": self.propose_here}
        window.actions["learn_toggle"].setCheckable(True)
        window.actions["learn_toggle"].triggered.connect(self._on_toggle_triggered)
        for name, slot in slots.items():
            if slot is not None:
                window.actions[name].triggered.connect(lambda _c=False, slot=slot: slot())

    def attach_base_picker(self, toolbar: QToolBar) -> None:
        """Put the base picker on the learning toolbar, before the status."""
        status = next((a for a in toolbar.actions()
                       if toolbar.widgetForAction(a) is self.status_label), None)
        # A widget on a toolbar is shown and hidden through the action holding it.
        if status is None:
            self._base_action = toolbar.addWidget(self.base_combo)
        else:
            self._base_action = toolbar.insertWidget(status, self.base_combo)
        self._base_action.setVisible(self.base_combo.count() > 0)

    def _on_base_combo_activated(self, _row: int) -> None:
        self.refresh()                  # the toggle's tooltip names the base picked

    def _on_toggle_triggered(self, checked: bool) -> None:
        self.toggle(checked)
        # A session that failed to open leaves the toggle off (the error was shown).
        self.actions["learn_toggle"].setChecked(self.learner is not None)

    @property
    def actions(self):
        return self.window.actions

    @property
    def session(self):
        """The window's project session (reports_errors shows errors through it)."""
        return self.window.session

    def set_project(self, project_session) -> None:
        self.stop()
        self._looked_for = set()
        if project_session is not None:
            project_session.annotations_changed.connect(self._on_annotations_changed)
        self.refresh()

    # ---- enabled state ------------------------------------------------------------------
    def refresh(self) -> None:
        """Enable the toggle when a detector or segmenter is active, and say why not
        otherwise; offer the active ones as the base."""
        w, toggle = self.window, self.actions["learn_toggle"]
        problem = "open a project first" if w.session is None else base_problem(w.session.conn)
        if problem is None and w.player.source is None:
            problem = "open a video or image folder first"
        self._fill_bases()
        toggle.setEnabled(problem is None or self.learner is not None)
        toggle.setToolTip(problem or f"Learn from my corrections: a small adapter on "
                                     f"{self.base_combo.currentText()} learns, in the "
                                     f"background, from the frames you correct")
        for name in LOOP_ACTIONS:
            self.actions[name].setEnabled(self.learner is not None)
        self._show_status()

    # ---- toggle -------------------------------------------------------------------------
    @reports_errors
    def toggle(self, on: bool) -> None:
        if on and self.learner is None:
            self._start()
        elif not on and self.learner is not None:
            self.stop()
        self.actions["learn_toggle"].setChecked(self.learner is not None)
        self.refresh()

    def _fill_bases(self) -> None:
        """The active detector and segmenter, the one picked kept; fixed while a session is
        open (another base is another session)."""
        combo, w = self.base_combo, self.window
        bases = active_bases(w.session.conn) if w.session is not None else []
        picked = self.learner.base.id if self.learner is not None else combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for m in bases:
            combo.addItem(f"{m.display_name or m.name} ({m.task})", m.id)
        index = combo.findData(picked)
        combo.setCurrentIndex(index if index >= 0 else 0)
        combo.blockSignals(False)
        combo.setEnabled(self.learner is None and len(bases) > 1)
        if self._base_action is not None:
            self._base_action.setVisible(bool(bases))   # no empty picker without a base
        why = ("the model the session adapts (turn learning off to pick another)"
               if self.learner is not None else
               "the model whose adapter learns from your corrections")
        combo.setToolTip(f"{combo.currentText()}: {why}" if bases else why)

    def _start(self) -> None:
        from src.training.learning.session import LearningSession
        w = self.window
        if w.session is None or w.player.source is None:
            return
        base = self.base_combo.currentData()
        self.learner = LearningSession.open(w.session.project, w.player.source.id,
                                            base if base is not None else "active",
                                            settings=self.settings,
                                            on_progress=self.bridge.progress.emit,
                                            on_update=self.bridge.finished.emit)
        self._frame, self._edited = (w.annotator.frame.id if w.annotator.frame else None), False
        self._propose_if_empty()

    def stop(self) -> None:
        """Close the session (a running update is cancelled; the session stays on disk)."""
        self.pause_timer.stop()
        self._stop_proposals()
        if self.learner is not None:
            self._report_corrected()
            self.learner.close()
            self.learner = None
        self.actions["learn_toggle"].setChecked(False)

    def _resume_open_session(self) -> None:
        """The first time a source is shown after the project opens, a session left open on
        it (with a base still active) comes back on, toggle and status included."""
        w = self.window
        if w.session is None or w.player.source is None or \
                w.player.source.id in self._looked_for:
            return
        self._looked_for.add(w.player.source.id)
        for base in active_bases(w.session.conn):
            if learning_repo.find_open_session(w.session.conn, w.player.source.id,
                                               base.id) is not None:
                self._fill_bases()
                self.base_combo.setCurrentIndex(self.base_combo.findData(base.id))
                self.toggle(True)
                return

    # ---- corrections and proposals ------------------------------------------------------
    def _on_annotations_changed(self) -> None:
        frame = self.window.annotator.frame
        if self.learner is not None and not self._proposing and frame is not None:
            self._frame, self._edited = frame.id, True     # drawing captures a new frame
            self.pause_timer.start()

    def _on_player_frame_shown(self, _index: int, _image) -> None:
        if self.learner is None:
            self._resume_open_session()
            return
        self.pause_timer.start()
        frame = self.window.annotator.frame
        frame_id = frame.id if frame is not None else None
        if frame_id == self._frame:
            return
        self._report_corrected()
        self._frame, self._edited = frame_id, False
        self._propose_if_empty()

    @reports_errors
    def _report_corrected(self) -> None:
        """The frame the user leaves counts as corrected when its shapes were edited."""
        if self.learner is None or self._frame is None or not self._edited:
            return
        frame_id, self._edited = self._frame, False
        conn = self.window.session.conn
        accepted = annotations_repo.list_annotations(conn, frame_id, status="accepted")
        if not accepted:
            return                          # nothing accepted: not a training sample
        edits = learning_repo.correction_counts(conn, frame_id, f"model:{self.learner.base.id}")
        edits["added"] = sum(1 for a in accepted if a.source == "manual" and a.kind != "tag")
        self.learner.frame_corrected(frame_id, edits)
        if self.learner.updating and not self._progress_text:
            self._progress_text = "updating…"       # every K frames an update starts itself
        self._show_status()

    def _propose_if_empty(self) -> None:
        """Proposals from the session's model on a captured frame that has no shapes yet
        (not while Suggest frames runs that model in its thread)."""
        frame = self.window.annotator.frame
        if frame is None or self.window.suggester.running or self._has_shapes(frame.id):
            return
        self._request_proposals(ProposalRequest(frame.id, auto=True))

    def _has_shapes(self, frame_id: int) -> bool:
        """Any shape, whatever its status (frame tags like 'night' are not shapes)."""
        return any(a.kind != "tag" for a in annotations_repo.list_annotations(
            self.window.session.conn, frame_id))

    @reports_errors
    def propose_here(self) -> None:
        """Learn › Propose on this frame with the session (captures the frame if needed)."""
        w = self.window
        if self.learner is None:
            return
        if w.suggester.running:          # it runs the same model object in its thread
            w.status.showMessage("Suggest frames is using the model: propose when it ends", 4000)
            return
        frame = w.annotator.frame or w.capture()
        if frame is not None:
            self._request_proposals(ProposalRequest(frame.id, auto=False))

    def _request_proposals(self, request: ProposalRequest) -> None:
        """Start a job now, or after the running one (a later request replaces this one)."""
        if self.proposals.running:
            self._next_request = request
            return
        self.proposals.start(self.learner, request)
        self.window.status.showMessage(PROPOSING)
        self._show_status()

    @reports_errors
    def _on_proposals_ended(self, request: ProposalRequest, batch, error) -> None:
        if error is not None:
            self._clear_proposing_message()
            dialogs.show_error(self.window, error)
        elif self.learner is not None and self.window.session is not None:
            self._store_proposals(request, batch)
        self._start_next_request()
        self._show_status()

    @reports_errors
    def _store_proposals(self, request: ProposalRequest, batch) -> None:
        """Store the job's proposals; automatic ones only on a frame still without shapes
        (the user may have drawn one while the job ran)."""
        w = self.window
        keep = [i for i in batch.frame_ids if not (request.auto and self._has_shapes(i))]
        if not keep:
            self._clear_proposing_message()
            return
        self._proposing = True
        try:
            summary = self.learner.store_proposals(batch, keep)
            w.session.annotations_changed.emit()
            if w.annotator.frame is not None and w.annotator.frame.id in keep:
                w.annotator.reload()
        finally:
            self._proposing = False
        w.status.showMessage(f"{summary.proposals} proposal(s) from {batch.model_name}", 4000)

    def _start_next_request(self) -> None:
        """The request made while the job ran, unless it is moot: an automatic one on a
        frame the user has left, or that has shapes now."""
        request, self._next_request = self._next_request, None
        if request is None or self.learner is None or self.window.session is None \
                or self.window.suggester.running:
            return
        if request.auto:
            frame = self.window.annotator.frame
            if frame is None or frame.id != request.frame_id or self._has_shapes(frame.id):
                return
        self._request_proposals(request)

    def _stop_proposals(self) -> None:
        """Wait for a running proposal job (its result is dropped), forget a waiting one."""
        self._next_request = None
        if self.proposals.running:
            self.proposals.shutdown()
            self._clear_proposing_message()

    def _clear_proposing_message(self) -> None:
        """A job ended without a result to tell: "Proposing…" goes (another message stays)."""
        if self.window.status.currentMessage() == PROPOSING:
            self.window.status.clearMessage()

    @property
    def proposing(self) -> bool:
        """A proposal job runs, or waits for the running one."""
        return self.proposals.running or self._next_request is not None

    def model_busy(self) -> Optional[str]:
        """Why Suggest frames must not take the session's model now, or None."""
        if self.proposals.running:
            return "the learning session is proposing with its model; try again when it ends"
        return None

    def adapted_predictor(self):
        """The session's base + adapter when the adapter is in use (Suggest frames scores
        their disagreement with the base), else None."""
        if self.learner is None or not self.learner.status().adapter_in_use:
            return None
        return self.learner.predictor()

    # ---- update, promote, discard -------------------------------------------------------
    @reports_errors
    def _on_pause_timer_timeout(self) -> None:
        """The user paused: an update starts when frames were corrected since the last one
        and none is running. The frame on screen is not counted yet (a pause half way through
        it would teach its unfinished labels); it counts when the user moves on."""
        if self.learner is None or self.learner.updating:
            return
        if self.learner.pending_corrections == 0:
            return
        if self.learner.request_update() in ("started", "queued"):
            self._progress_text = "updating (you paused)…"
            self._show_status()
    @reports_errors
    def update_now(self) -> None:
        if self.learner is None:
            return
        self._report_corrected()
        answer = self.learner.request_update()
        self._progress_text = {"started": "updating…", "queued": "update queued",
                               "waiting": ""}.get(answer, answer)
        if answer == "waiting":
            self.window.status.showMessage(
                f"Correct at least {self.learner.settings.min_samples} frames before an "
                f"update", 5000)
        self._show_status()

    def _on_bridge_progress(self, p) -> None:
        score = f", score {p.val_metric:.2f}" if p.val_metric is not None else ""
        self._progress_text = f"updating: epoch {p.epoch}/{p.max_epochs}{score}"
        self._show_status()

    def _on_bridge_finished(self, update) -> None:
        self._progress_text = ""
        self._show_status()
        self.window.status.showMessage(f"Adapter update {update.status}: {update.reason}", 8000)

    @reports_errors
    def promote(self) -> None:
        if self.learner is None:
            return
        name, ok = QInputDialog.getText(self.window, "Promote the adapter",
                                        "Name of the new model version:",
                                        text=f"{self.learner.base.name}-adapted")
        if not ok or not name.strip():
            return
        self._stop_proposals()
        self._report_corrected()
        version = self.learner.promote(name.strip())
        self.learner = None
        self.actions["learn_toggle"].setChecked(False)
        self.window.status.show_active_models(self.window.session)
        self.window.status.showMessage(f"Promoted the adapter to model version {version.id} "
                                       f"({version.name})", 8000)
        self.refresh()

    @reports_errors
    def discard(self) -> None:
        if self.learner is None or not dialogs.confirm(
                self.window, "Discard the adapter",
                "Forget this session's adapter and corrected-frame samples? "
                "(Your annotations stay.)"):
            return
        self._stop_proposals()          # its model reads the adapter being deleted
        self.learner.discard()
        self.learner = None
        self.actions["learn_toggle"].setChecked(False)
        self.window.status.showMessage("Learning session discarded", 5000)
        self.refresh()

    # ---- status -------------------------------------------------------------------------
    def _show_status(self) -> None:
        if self.learner is None:
            self.status_label.setText("")
            self.status_label.setToolTip("")
            return
        s = self.learner.status()
        parts = [f"base {s.base}", f"{s.corrected_frames} corrected"]
        if s.last_update_at:
            metric = f" (score {s.last_val_metric:.2f})" if s.last_val_metric is not None else ""
            parts.append(f"updated {_local_time(s.last_update_at)}{metric}")
        parts.append("adapter in use" if s.adapter_in_use else "base only")
        if self._progress_text:
            parts.append(self._progress_text)
        if self.proposals.running:
            parts.append("proposing…")
        self.status_label.setText(" · ".join(parts))
        self.status_label.setToolTip(s.reason)


def _local_time(iso: str) -> str:
    """'13:20' of a UTC ISO time, in local time."""
    from datetime import datetime, timezone
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return time.strftime("%H:%M", time.localtime(when.timestamp()))
