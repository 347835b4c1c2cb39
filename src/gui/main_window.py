"""The main window: composes player, annotator, class panel and gallery, and wires actions.

It owns no editing logic: the session writes to the store, the widgets draw, and this class
only connects them and handles project-level commands (open, import, capture).
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QEvent, Qt, QThread
from PyQt6.QtGui import QActionGroup, QCloseEvent
from PyQt6.QtWidgets import (QDockWidget, QFileDialog, QMainWindow, QStyle, QVBoxLayout,
                             QWidget)

from src.db import frames as frame_repo
from src.db import sources as source_repo
from src.db.project import Project
from src.db.records import Frame, MediaSource
from src.errors import LabelLoopError
from src.gui import dialogs, resume, settings
from src.gui.actions import ShortcutsDialog, build_actions
from src.gui.assist.controller import ACTIONS as ASSIST_ACTIONS
from src.gui.assist.controller import AssistLabeling
from src.gui.assist.widgets import ConfidenceFilter
from src.gui.canvas.annotator import HINT_NO_PROJECT, HINT_NO_SOURCE, Annotator
from src.gui.class_panel import ClassPanel
from src.gui.drop import DropImporter
from src.gui.gallery import Gallery
from src.gui.guard import reports_errors
from src.gui.learning_loop import LearningLoop
from src.gui.navigation import Navigator
from src.gui.player import Player
from src.gui.player_bar import PlayerBar
from src.gui.project_tools import ProjectTools
from src.gui.sam.controller import SamTools
from src.gui.training.menu import TrainingMenu
from src.gui.session import ProjectSession
from src.gui.status_bar import StatusBar
from src.gui.suggest import FrameSuggester
from src.gui.toolbar import LearningToolBar, ToolBar
from src.gui.workers import ImportWorker, start_in_thread


class MainWindow(QMainWindow):
    def __init__(self, project_dir: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.session: ProjectSession | None = None
        self.actions = build_actions(self)
        self.player = Player(self)
        self.annotator = Annotator(self)
        self.annotator.capture_current = self.capture
        self.player_bar = PlayerBar(self.actions, self)
        self.class_panel = ClassPanel(self)
        self.class_panel.setMaximumWidth(300)
        self.gallery = Gallery(self)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.toolbar = ToolBar(self.actions, self)
        self.addToolBar(self.toolbar)
        self.navigator = Navigator(self)
        self.tools = ProjectTools(self)
        self.training = TrainingMenu(self)
        self.assist = AssistLabeling(self)
        self.confidence = ConfidenceFilter(self)
        self.toolbar.add_assist_group(self.actions, self.confidence)
        self.status.addPermanentWidget(self.assist.progress)
        self.suggester = FrameSuggester(self)
        DropImporter(self, self.import_media)
        self._jobs: list[tuple[QThread, ImportWorker]] = []
        self._shape_counts = (0, 0)
        self._layout()
        self._connect_actions()
        self._connect_widgets()
        self.learning = LearningLoop(self)        # after the widgets: see its frame_shown
        self.suggester.second_predictor = self.learning.adapted_predictor
        self.suggester.model_busy = self.learning.model_busy
        self.addToolBarBreak()
        self.learning_toolbar = LearningToolBar(self.actions, self.learning.status_label, self)
        self.addToolBar(self.learning_toolbar)
        self.learning.attach_base_picker(self.learning_toolbar)
        self.sam = SamTools(self)       # after the widgets: it follows the frame they show
        self._update_enabled()
        self.resize(1280, 860)
        self._set_title()
        self._show_hint()
        if project_dir is not None:
            self.open_project(project_dir)

    def _layout(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.annotator, 1)
        layout.addWidget(self.player_bar)
        self.setCentralWidget(central)
        for title, widget, area in (("Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea),
                                    ("Gallery", self.gallery, Qt.DockWidgetArea.BottomDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{title.lower()}Dock")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, dock)
        self.resizeDocks([self.findChild(QDockWidget, "galleryDock")], [230], Qt.Orientation.Vertical)
        self.resizeDocks([self.findChild(QDockWidget, "classesDock")], [250],
                         Qt.Orientation.Horizontal)

    def _connect_actions(self) -> None:
        a, view = self.actions, self.annotator.view
        slots = {
            "new_project": lambda: self._choose_project(create=True),
            "open_project": lambda: self._choose_project(create=False),
            "import_video": self._choose_video, "import_folder": self._choose_folder,
            "import_annotations": self.tools.import_annotations, "export": self.tools.export,
            "check": self.tools.check_annotations,
            "train": self.training.train, "tensorboard": self.training.open_tensorboard,
            "build_dataset": self.training.datasets.build_dataset,
            "retrain": self.training.datasets.retrain,
            "suggest_frames": self.suggester.suggest,
            "next_suggested": self.suggester.next_suggestion,
            "models": self.training.models, "training_queue": self.training.training_queue,
            "quit": self.close, "shortcuts": lambda: ShortcutsDialog(self).open(),
            "undo": self._undo, "redo": self._redo,
            "delete": self.annotator.delete_selected,
            "accept": lambda: self.annotator.accept_proposals(True),
            "accept_all": lambda: self.annotator.accept_proposals(False),
            "reject": lambda: self.annotator.reject_proposals(True),
            "reject_all": lambda: self.annotator.reject_proposals(False),
            "zoom_fit": view.zoom_to_fit, "zoom_in": lambda: view.zoom_by(1.25),
            "zoom_out": lambda: view.zoom_by(0.8),
            "play": self.player.toggle_play, "capture": self.capture,
            "back1": lambda: self.player.step(-1), "forward1": lambda: self.player.step(1),
            "back10": lambda: self.player.step(-10), "forward10": lambda: self.player.step(10),
            "prev_annotated": lambda: self._go_annotated(-1),
            "next_annotated": lambda: self._go_annotated(1),
            **{name: getattr(self.assist, name) for name in ASSIST_ACTIONS},
        }
        for n in range(1, 10):
            slots[f"class_{n}"] = lambda n=n: self.class_panel.pick_number(n)
            slots[f"tag_{n}"] = lambda n=n: self.annotator.toggle_tag_number(n)
        for name, slot in slots.items():
            # triggered(bool checked): drop the flag so every slot is called without arguments.
            a[name].triggered.connect(lambda _checked=False, slot=slot: slot())
        group = self.mode_group = QActionGroup(self)
        for mode in ("edit", "box", "polygon"):
            action = a[f"mode_{mode}"]
            group.addAction(action)
            action.triggered.connect(lambda _c, m=mode: view.set_mode(m))
        a["mode_box"].setChecked(True)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

    def _connect_widgets(self) -> None:
        p = self.player
        p.frame_shown.connect(self._on_player_frame_shown)
        self.status.models_clicked.connect(self.training.models)
        p.position_changed.connect(self._on_player_position_changed)
        p.playing_changed.connect(self._on_player_playing_changed)
        p.source_opened.connect(self._on_player_source_opened)
        p.error.connect(lambda exc: dialogs.show_error(self, exc))
        self.player_bar.seek_requested.connect(p.seek)
        self.player_bar.scrub_requested.connect(p.scrub)
        self.player_bar.scrub_ended.connect(p.end_scrub)
        self.player_bar.edit_finished.connect(lambda: self.annotator.view.setFocus())
        p.preview_shown.connect(self._on_player_preview_shown)
        self.player_bar.source_chosen.connect(self._on_bar_source_chosen)
        self.annotator.view.space_tapped.connect(p.toggle_play)
        self.annotator.view.cursor_moved.connect(
            lambda x, y: self.status.show_cursor(x, y, self.annotator.view.image_size))
        self.annotator.shapes_changed.connect(self._on_annotator_shapes_changed)
        self.class_panel.class_picked.connect(self.annotator.set_class_of_selection)
        self.gallery.frame_activated.connect(self._on_gallery_frame_activated)
        self.confidence.threshold_changed.connect(self.annotator.set_min_confidence)

    # ---- project ------------------------------------------------------------------------
    def open_project(self, path: Path, *, create: bool = True) -> bool:
        try:
            project = Project.open(path, create=create)
        except LabelLoopError as exc:
            dialogs.show_error(self, exc)
            return False
        self.close_project()
        self.session = ProjectSession(project, self)
        self.session.error.connect(lambda exc: dialogs.show_error(self, exc))
        self.session.frames_changed.connect(self._update_counts)
        self.session.undo_stack.canUndoChanged.connect(self._update_enabled)
        self.session.undo_stack.canRedoChanged.connect(self._update_enabled)
        for widget in (self.annotator, self.class_panel, self.gallery, self.toolbar,
                       self.navigator, self.sam):
            widget.set_session(self.session)
        settings.add_recent_project(project.root)
        self.learning.set_project(self.session)
        self._set_title()
        self.status.show_active_models(self.session)
        self.training.reattach()
        resume.reopen(self, source_repo.list_sources(project.conn))
        self.suggester.restore()
        self._show_hint()
        self._update_enabled()
        return True

    def _show_hint(self) -> None:
        """Say what to do first while there is no project or nothing imported."""
        if self.session is None:
            self.annotator.show_hint(HINT_NO_PROJECT, [self.actions["new_project"],
                                                       self.actions["open_project"]])
        elif self.player.source is None:
            self.annotator.show_hint(HINT_NO_SOURCE, [self.actions["import_video"],
                                                      self.actions["import_folder"]])

    def close_project(self) -> None:
        if self.session is None:
            return
        resume.save(self)
        self.player.pause()
        self.tools.close_dialogs()
        self.assist.shutdown()
        self.training.shutdown()
        self.suggester.set_session(None)
        self.learning.set_project(None)
        self.sam.set_session(None)
        self.toolbar.set_session(None)
        self.navigator.set_session(None)
        self.gallery.set_session(None)
        self.annotator.set_session(None)
        self.class_panel.set_session(None)
        self.player.source = None
        self.session.project.close()
        self.session.deleteLater()
        self.session = None

    def _set_title(self) -> None:
        if self.session is None:
            self.setWindowTitle("LabelLoop — no project")
        else:
            root = self.session.project.root
            self.setWindowTitle(f"LabelLoop — {root.name} ({root})")

    def _choose_project(self, create: bool) -> None:
        title = "New project folder" if create else "Open project folder"
        folder = QFileDialog.getExistingDirectory(self, title)
        if folder:
            self.open_project(Path(folder), create=create)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in settings.recent_projects():
            self.recent_menu.addAction(path, lambda p=path: self.open_project(Path(p), create=False))

    # ---- import -------------------------------------------------------------------------
    def _choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import video", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)")
        if path:
            self.import_media(Path(path))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import image folder")
        if folder:
            self.import_media(Path(folder))

    def import_media(self, path: Path) -> ImportWorker | None:
        """Import in a worker thread; the source opens in the player when it is done."""
        if self.session is None:
            dialogs.show_error(self, LabelLoopError("open or create a project first"))
            return None
        worker = ImportWorker(self.session.project.root, path)
        worker.finished.connect(self._on_import_finished)
        worker.failed.connect(lambda exc: dialogs.show_error(self, exc))
        self.status.showMessage(f"Importing {path.name}…")
        thread = start_in_thread(worker, self)
        job = (thread, worker)            # keeps the parentless worker alive until it is done
        self._jobs.append(job)
        thread.finished.connect(lambda: self._jobs.remove(job))
        return worker

    def _on_import_finished(self, source: MediaSource, frame_count: int) -> None:
        self.status.showMessage(f"Imported {source.name}: {source.frame_count} frames"
                                f"{f', {frame_count} captured' if frame_count else ''}", 5000)
        if self.session is None:
            return
        self.session.frames_changed.emit()
        self.player_bar.set_sources(source_repo.list_sources(self.session.conn), source.id)
        self.player.open_source(source)

    # ---- player -------------------------------------------------------------------------
    def _on_bar_source_chosen(self, source_id: int) -> None:
        if self.player.source is None or self.player.source.id != source_id:
            self.player.open_source(source_repo.get_source(self.session.conn, source_id))

    def _on_player_source_opened(self, source: MediaSource) -> None:
        self.player_bar.set_range(self.player.frame_count)
        self._update_enabled()

    def _on_player_frame_shown(self, index: int, image) -> None:
        if self.session is None or self.player.source is None:
            return
        self.annotator.show_frame(self.player.source.id, index, image)
        self._show_frame_status()
        self._update_enabled()

    def _show_frame_status(self) -> None:
        """The source and frame on screen, and whether it is captured (or nothing)."""
        position, source = self.annotator.position, self.player.source
        if position is None or source is None or position[0] != source.id:
            self.status.show_frame("")
            return
        captured = "captured" if self.annotator.frame else "not captured"
        self.status.show_frame(f"{source.name}  frame {position[1]} ({captured})")

    def _on_player_preview_shown(self, index: int, shown: int, image) -> None:
        self.annotator.show_preview(image)
        self.player_bar.set_position(index, self.player.frame_count, None, approximate_of=shown)

    def _on_player_position_changed(self, index: int) -> None:
        self.player_bar.set_position(index, self.player.frame_count, self.player.timestamp(index))

    def _on_player_playing_changed(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.actions["play"].setIcon(self.style().standardIcon(icon))
        self.annotator.set_editable(not playing)
        self._update_enabled()

    def _update_enabled(self) -> None:
        a, has_project = self.actions, self.session is not None
        shown = has_project and self.player.source is not None and self.player.image is not None
        a["capture"].setEnabled(shown and not self.player.playing)
        for name in ASSIST_ACTIONS:
            a[name].setEnabled(shown and not self.player.playing)
        for name in ("play", "back1", "forward1", "back10", "forward10", "prev_annotated",
                     "next_annotated"):
            a[name].setEnabled(has_project and self.player.source is not None)
        for name in ("import_video", "import_folder", "import_annotations", "export", "check",
                     "next_suggested"):
            a[name].setEnabled(has_project)
        a["suggest_frames"].setEnabled(has_project and self.player.source is not None)
        self.learning.refresh()
        stack = self.session.undo_stack if has_project else None
        a["undo"].setEnabled(bool(stack and stack.canUndo()))
        a["redo"].setEnabled(bool(stack and stack.canRedo()))

    @reports_errors
    def capture(self) -> Frame | None:
        """Capture the frame on screen (only while paused); it appears in the gallery at once."""
        p = self.player
        if self.session is None or p.playing or p.image is None or p.source is None:
            return None
        frame = self.session.capture(p.source, p.index, p.image, p.image_timestamp)
        self.annotator.frame = frame
        self.gallery.select_frame(frame.id)
        self.status.show_frame(f"{p.source.name}  frame {p.index} (captured)")
        return frame

    def _go_annotated(self, direction: int) -> None:
        if self.session is None or self.player.source is None:
            return
        frame = self.session.neighbour_annotated(self.player.source.id, self.player.target, direction)
        if frame is not None:
            self.player.pause()
            self.player.seek(frame.frame_index)

    def _on_gallery_frame_activated(self, frame: Frame) -> None:
        self.player.pause()
        if self.player.source is None or self.player.source.id != frame.source_id:
            source = source_repo.get_source(self.session.conn, frame.source_id)
            self.player_bar.set_sources(source_repo.list_sources(self.session.conn), source.id)
            self.player.open_source(source, frame.frame_index)
        else:
            self.player.seek(frame.frame_index)

    def _on_annotator_shapes_changed(self, shapes: int, proposals: int) -> None:
        self._shape_counts = (shapes, proposals)
        self._update_counts()

    def _update_counts(self) -> None:
        if self.session is not None:
            shapes, proposals = self._shape_counts
            self.status.show_counts(shapes, proposals, frame_repo.count_frames(self.session.conn))
            self._show_frame_status()        # a capture undone or a frame deleted

    def recover_from_error(self, summary: str, details: str, log_path) -> None:
        """An unexpected exception (see guard.ErrorReporter): show the saved state, then say so."""
        if self.session is not None:
            self.session.reload_from_store()
        dialogs.show_unexpected_error(self, summary, details, log_path)

    # ---- undo ---------------------------------------------------------------------------
    def _undo(self) -> None:
        if self.session is not None:
            self.session.undo_stack.undo()

    def _redo(self) -> None:
        if self.session is not None:
            self.session.undo_stack.redo()

    def shutdown(self) -> None:
        """Wait for running imports, close the project, stop the decode thread (idempotent)."""
        for thread, _worker in list(self._jobs):
            thread.wait()
        self.training.shutdown()
        self.close_project()
        self.sam.shutdown()
        self.player.close()

    def changeEvent(self, event: QEvent) -> None:
        # A training run from the command line may have activated a model meanwhile.
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.status.show_active_models(self.session)
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
