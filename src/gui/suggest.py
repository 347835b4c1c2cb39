"""Suggest frames in the window: the ranking is computed in a worker thread (the model runs
there), its uncaptured frames are captured (one undoable step), the gallery shows the
ranking, and N jumps to the next suggested frame that has no label yet."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from src.db import sources as source_repo
from src.db import suggestions as suggestions_repo
from src.db.project import Project
from src.gui import dialogs
from src.gui.gallery import SuggestedFrame
from src.gui.guard import reports_errors
from src.gui.workers import start_in_thread
from src.training.suggest.ranking import labelled_frames

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow

COUNT = 10


class SuggestWorker(QObject):
    """Ranks the frames of one source with a model version (src/training/suggest)."""
    progress = pyqtSignal(int, int)          # frames scored, frames to score
    finished = pyqtSignal(object, object)    # SuggestionReport, {frame index: BGR image}
    failed = pyqtSignal(object)              # exception

    def __init__(self, project_root: Path, source_id: int, model_ref: str = "active",
                 count: int = COUNT, second=None) -> None:
        super().__init__()
        self.project_root, self.source_id = project_root, source_id
        self.model_ref, self.count, self.second = model_ref, count, second
        self._stop = False

    def cancel(self) -> None:
        self._stop = True

    @pyqtSlot()
    def run(self) -> None:
        try:
            report, images = self._rank()
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(report, images)

    def _rank(self):
        from src.training.inference.loading import load_predictor
        from src.training.inference.media import open_input
        from src.training.suggest.ranking import store_ranking, suggest_frames
        with Project.open(self.project_root, create=False) as project:
            version, predictor = load_predictor(project, self.model_ref, device="auto")
            with open_input(str(self.source_id), project) as media:
                report = suggest_frames(project, media, predictor, second=self.second,
                                        count=self.count, progress=self.progress.emit,
                                        should_stop=lambda: self._stop)
                images = {s.frame_index: media.read(s.frame_index).copy()
                          for s in report.suggestions if s.frame_id is None}
            if not report.stopped:
                store_ranking(project, report, version.id)
        return report, images


class FrameSuggester(QObject):
    """The Learn › Suggest frames and Next suggested frame (N) actions."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.source_id: Optional[int] = None
        self.ranking: list[tuple[int, int]] = []        # (frame index, frame id), best first
        self._job: Optional[tuple[QThread, SuggestWorker]] = None
        self._capture_when_shown: Optional[tuple[int, int]] = None
        self._generation = 0        # a ranking of a project closed meanwhile is dropped
        self.second_predictor = lambda: None   # the learning session's model, when one runs
        self.model_busy = lambda: None         # why that model is in use elsewhere, or None
        window.player.frame_shown.connect(self._on_player_frame_shown)

    @property
    def session(self):
        """The window's project session (reports_errors shows errors through it)."""
        return self.window.session

    @property
    def running(self) -> bool:
        return self._job is not None

    @reports_errors
    def suggest(self) -> None:
        w = self.window
        if w.session is None or w.player.source is None:
            return
        if self._job is not None:
            w.status.showMessage("Suggest frames is already running…", 3000)
            return
        busy = self.model_busy()               # one thread at a time runs a model object
        if busy:
            w.status.showMessage(f"Suggest frames not started: {busy}", 5000)
            return
        from src.training.inference.loading import find_version
        find_version(w.session.project)           # no active model: say so before starting
        worker = SuggestWorker(w.session.project.root, w.player.source.id,
                               second=self.second_predictor())
        generation = self._generation
        worker.progress.connect(self._on_worker_progress)
        worker.finished.connect(
            lambda report, images: self._on_worker_finished(report, images, generation))
        worker.failed.connect(lambda exc: self._on_worker_failed(exc, generation))
        thread = start_in_thread(worker, self)
        self._job = (thread, worker)
        thread.finished.connect(self._on_thread_finished)
        w.status.showMessage("Suggesting frames: loading the model…")

    def _on_thread_finished(self) -> None:
        self._job = None

    def _on_worker_progress(self, done: int, total: int) -> None:
        self.window.status.showMessage(f"Suggesting frames: scored {done}/{total}…")

    def _on_worker_failed(self, exc: BaseException, generation: int) -> None:
        if generation != self._generation:
            return
        self.window.status.showMessage("Suggest frames failed", 5000)
        dialogs.show_error(self.window, exc)

    @reports_errors
    def _on_worker_finished(self, report, images: dict, generation: int) -> None:
        w = self.window
        if generation != self._generation or w.session is None:
            return                               # the project was closed meanwhile
        if not report.suggestions:
            self.ranking, self.source_id = [], None        # the stored one was cleared too
            w.gallery.show_suggestions([], select=False)
            w.status.showMessage("Suggest frames: no unlabelled frame to suggest", 5000)
            return
        source = source_repo.get_source(w.session.conn, report.source_id)
        captured = self._capture(source, images)
        self.source_id = source.id
        self.ranking = [(s.frame_index, s.frame_id or captured[s.frame_index])
                        for s in report.suggestions]
        w.gallery.show_suggestions([
            SuggestedFrame(frame_id, rank, s.score, s.details)
            for rank, (s, (_, frame_id)) in enumerate(zip(report.suggestions, self.ranking), 1)])
        w.status.showMessage(
            f"Suggested {len(self.ranking)} frames to label ({len(images)} newly captured, "
            f"{report.skipped_duplicates} near-duplicates of labelled frames skipped); "
            f"N goes to the next", 10000)

    def _capture(self, source, images: dict) -> dict[int, int]:
        """Capture the suggested frames not captured yet, as one undoable step."""
        session = self.window.session
        if not images:
            return {}
        session.undo_stack.beginMacro(f"Capture {len(images)} suggested frames")
        try:
            return {index: session.capture(source, index, image, None).id
                    for index, image in sorted(images.items())}
        finally:
            session.undo_stack.endMacro()

    @reports_errors
    def next_suggestion(self) -> None:
        """Go to the best suggested frame after the one shown that has no label yet."""
        w = self.window
        if w.session is None or not self.ranking:
            w.status.showMessage("No suggested frames: Learn › Suggest frames first", 5000)
            return
        target = self._next_unlabelled()
        if target is None:
            w.status.showMessage("Every suggested frame is labelled: suggest frames again",
                                 5000)
            return
        self._go(target)

    def _next_unlabelled(self) -> Optional[int]:
        """The first unlabelled suggestion ranked after the frame shown (else the best)."""
        w = self.window
        labelled = {f.frame_index for f in labelled_frames(w.session.project, self.source_id)}
        ranked = [index for index, _ in self.ranking]
        todo = [index for index in ranked if index not in labelled]
        if not todo:
            return None
        shown = w.player.target if (w.player.source and w.player.source.id == self.source_id) \
            else None
        if shown in ranked:
            after = [i for i in todo if ranked.index(i) > ranked.index(shown)]
            return after[0] if after else todo[0]
        return todo[0]

    def _go(self, index: int) -> None:
        w = self.window
        w.player.pause()
        self._capture_when_shown = (self.source_id, index)
        frame = w.session.frame_at(self.source_id, index)
        if frame is not None:
            w.gallery.select_frame(frame.id)
        if w.player.source is None or w.player.source.id != self.source_id:
            source = source_repo.get_source(w.session.conn, self.source_id)
            w.player_bar.set_sources(source_repo.list_sources(w.session.conn), source.id)
            w.player.open_source(source, index)
        elif w.player.target != index or w.player.image is None:
            w.player.seek(index)
        else:
            self._on_player_frame_shown(index, w.player.image)

    def _on_player_frame_shown(self, index: int, _image) -> None:
        """A suggested frame that was un-captured meanwhile (undo, delete) is captured again
        once it is on screen, as the Capture action does."""
        wanted, w = self._capture_when_shown, self.window
        if wanted is None or w.player.source is None or w.player.target != wanted[1]:
            self._capture_when_shown = None          # the user went elsewhere meanwhile
            return
        if wanted != (w.player.source.id, index):
            return                                   # a frame on the way there
        self._capture_when_shown = None
        if w.session.frame_at(*wanted) is None:
            w.capture()

    def set_session(self, session) -> None:
        self.shutdown()
        self.ranking, self.source_id = [], None

    @reports_errors
    def restore(self) -> None:
        """After a project opens: the last stored ranking comes back (N goes through it; the
        gallery offers it as "Suggested to label" without switching to it)."""
        w = self.window
        source_id = suggestions_repo.latest_ranked_source(w.session.conn)
        if source_id is None:
            return
        stored = suggestions_repo.load_ranking(w.session.conn, source_id)
        frames = {s.frame_index: w.session.frame_at(source_id, s.frame_index) for s in stored}
        self.source_id = source_id
        self.ranking = [(s.frame_index, frames[s.frame_index].id
                         if frames[s.frame_index] is not None else None) for s in stored]
        w.gallery.show_suggestions(
            [SuggestedFrame(frames[s.frame_index].id, s.rank, s.score, s.details)
             for s in stored if frames[s.frame_index] is not None], select=False)

    def shutdown(self) -> None:
        """Stop a running ranking and wait for its thread (closing the project)."""
        self._generation += 1
        if self._job is not None:
            thread, worker = self._job
            worker.cancel()
            thread.wait()
            self._job = None

