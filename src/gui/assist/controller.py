"""The Assist menu's commands: pre-label this frame / the next N frames / a range with the
active detector, and propagate the selected boxes; one background job at a time, with
progress and Cancel in the status bar. Results are proposals in the store; the canvas and
the gallery re-read it when the job ends."""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, QThread, pyqtSlot
from PyQt6.QtWidgets import QDialog

from src.errors import LabelLoopError, ModelError
from src.gui import dialogs
from src.gui.assist.widgets import AssistDialog, JobProgress
from src.gui.assist.worker import AssistWorker
from src.gui.guard import reports_errors
from src.gui.workers import start_in_thread
from src.training.inference import assist
from src.training.inference.loading import CROP_TASKS
from src.training.inference.results import bounding_box
from src.training.models import ModelManager

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow

ACTIONS = ("prelabel_frame", "prelabel_next", "prelabel_range", "propagate")


class AssistLabeling(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.options = assist.AssistOptions()
        self.progress = JobProgress(window)
        self.progress.cancel_requested.connect(self.cancel)
        self.worker: AssistWorker | None = None
        self.thread: QThread | None = None

    @property
    def session(self):
        """The window's session: errors of the commands are shown through it."""
        return self.window.session

    @property
    def running(self) -> bool:
        return self.thread is not None

    # ---- commands -------------------------------------------------------------------------
    @reports_errors
    def prelabel_frame(self) -> None:
        where = self._ready()
        if where is not None:
            self._prelabel(where[0], [where[1]])

    @reports_errors
    def prelabel_next(self) -> None:
        self._ask_and_prelabel("next")

    @reports_errors
    def prelabel_range(self) -> None:
        self._ask_and_prelabel("range")

    def _ask_and_prelabel(self, mode: str) -> None:
        where = self._ready()
        choice = self._ask(mode, *where) if where else None
        if choice is not None:
            self._prelabel(where[0], choice.frames)

    @reports_errors
    def propagate(self) -> None:
        seeds = self._selected_seeds()
        if not seeds:
            raise ModelError("no box is selected", field="selection",
                             hint="select the boxes to follow on this frame (click, Ctrl+click)")
        where = self._ready()
        choice = self._ask("propagate", *where) if where else None
        if choice is None:
            return
        source_id, start = where
        count = len(choice.frames)
        job = partial(_propagate_job, source_id, start, seeds, count, self._options())
        self._start(f"Propagating {len(seeds)} box(es)", count, job)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def shutdown(self) -> None:
        """The project or the app closes: stop the job and wait for it."""
        if self.thread is not None:
            self.worker.cancel()
            self.thread.wait()
            self._ended()

    # ---- helpers ----------------------------------------------------------------------------
    def _ready(self) -> tuple[int, int] | None:
        """(source id, frame index) on screen once an active trusted detector exists; an
        error dialog saying what to do otherwise."""
        session, position = self.window.session, self.window.annotator.position
        if session is None or position is None:
            return None
        if self.running:
            raise LabelLoopError("a pre-label or propagate job is still running",
                                 hint="wait for it, or click Cancel in the status bar")
        assist.active_proposer(session.project)      # ModelError: no / untrusted model
        return position

    def _ask(self, mode: str, source_id: int, index: int):
        frame_count = self.window.player.frame_count
        has_classifier = ModelManager(self.window.session.project).active(CROP_TASKS[0])
        dialog = AssistDialog(mode, index, frame_count, self.options.conf,
                              self.options.two_stage if has_classifier else None, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        choice = dialog.choice()
        self.options.conf, self.options.two_stage = choice.conf, choice.two_stage
        return choice

    def _options(self) -> assist.AssistOptions:
        """A copy of the remembered options for one job (the next dialog may change them)."""
        return assist.AssistOptions(conf=self.options.conf, two_stage=self.options.two_stage,
                                    batch=self.options.batch, device=self.options.device)

    def _prelabel(self, source_id: int, frames: list[int]) -> None:
        job = partial(_prelabel_job, source_id, frames, self._options())
        what = f"frame {frames[0]}" if len(frames) == 1 else \
            f"frames {frames[0]}–{frames[-1]}"
        self._start(f"Pre-labelling {what}", len(frames), job)

    def _selected_seeds(self) -> list[assist.Seed]:
        annotator, session = self.window.annotator, self.window.session
        if session is None:
            return []
        chosen = set(annotator.view.selected_ids())
        seeds = []
        for ann in annotator.anns:
            if ann.id in chosen and ann.kind in ("box", "polygon"):
                box = ann.geometry if ann.kind == "box" else bounding_box(ann.geometry)
                cls = session.class_by_id(ann.class_id)
                seeds.append(assist.Seed(list(box), cls.name if cls else str(ann.class_id)))
        return seeds

    def _start(self, text: str, total: int, job) -> None:
        self.worker = AssistWorker(self.window.session.project.root, job)
        self.worker.progress.connect(self.progress.set_progress)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.progress.begin(text, total)
        self.thread = start_in_thread(self.worker, self)
        self.thread.setObjectName("assistThread")
        self.thread.finished.connect(self._ended)

    @pyqtSlot(object)
    def _on_worker_finished(self, summary) -> None:
        stopped = self.worker is not None and self.worker.cancelled
        self.window.status.showMessage(
            f"{'Cancelled: ' if stopped else ''}{summary.proposals} proposal(s) stored on "
            f"{summary.frames} frame(s)", 8000)
        self._refresh()

    @pyqtSlot(object)
    def _on_worker_failed(self, exc) -> None:
        self._refresh()
        dialogs.show_error(self.window, exc)

    def _refresh(self) -> None:
        self.progress.hide()
        session = self.window.session
        if session is not None:
            session.frames_changed.emit()          # frames the job captured
            session.annotations_changed.emit()

    def _ended(self) -> None:
        self.thread, self.worker = None, None
        self.progress.hide()


def _prelabel_job(source_id, frames, options, project, progress, should_stop):
    return assist.prelabel(project, source_id, frames, options, progress=progress,
                           should_stop=should_stop)


def _propagate_job(source_id, start, seeds, count, options, project, progress, should_stop):
    return assist.propagate_selection(project, source_id, start, seeds, count, options,
                                      progress=progress, should_stop=should_stop)
