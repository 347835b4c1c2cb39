"""The annotator: tag row + canvas for the frame on screen, wired to the session's store calls."""
from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QImage
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QMenu, QStackedLayout, QToolButton,
                             QVBoxLayout, QWidget)

from src.db.records import Annotation, Frame
from src.gui.canvas.tag_bar import TagBar
from src.gui.canvas.view import AnnotationView
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession


HINT_NO_PROJECT = ("<h2>No project open</h2><p>Create a project (File › New project…) or open"
                   " one (File › Open project…).</p>")
HINT_NO_SOURCE = ("<h2>This project has no video or images yet</h2>"
                  "<p>Import a video or a folder of images to start annotating,<br>"
                  "or drop a video file or an image folder on this window.</p>")


class EmptyHint(QWidget):
    """What to do first, with buttons for it, shown instead of an empty canvas."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyHint")
        self.label = QLabel(self)
        self.label.setObjectName("emptyHintText")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addLayout(self.buttons)
        layout.addStretch(1)
        self._actions: list[QAction] = []

    def show_text(self, text: str, actions: list[QAction]) -> None:
        self.label.setText(text)
        if actions != self._actions:
            while self.buttons.count() > 1:
                widget = self.buttons.takeAt(1).widget()     # the trailing stretch has none
                if widget is not None:
                    widget.hide()
                    widget.setParent(None)
                    widget.deleteLater()
            for action in actions:
                button = QToolButton(self)
                button.setDefaultAction(action)
                button.setObjectName(f"hint_{action.objectName()}")
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
                self.buttons.addWidget(button)
            self.buttons.addStretch(1)
            self._actions = list(actions)


class Annotator(QWidget):
    shapes_changed = pyqtSignal(int, int)      # shapes, proposals on the frame shown

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.frame: Frame | None = None
        self.anns: list[Annotation] = []
        self.position: tuple[int, int] | None = None        # (source id, frame index) shown
        # Set by the window: captures the frame on screen (drawing on a frame not yet
        # captured captures it first) and returns its Frame.
        self.capture_current: Callable[[], Frame | None] | None = None
        self._pending_selection: tuple[tuple[int, int], list[int]] | None = None
        self.tag_bar = TagBar(self)
        self.view = AnnotationView(self)
        self.hint = EmptyHint(self)
        canvas = QWidget(self)
        layout = QVBoxLayout(canvas)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tag_bar)
        layout.addWidget(self.view, 1)
        self._pages = QStackedLayout(self)
        self._pages.addWidget(canvas)
        self._pages.addWidget(self.hint)
        self.view.shape_drawn.connect(self._on_view_shape_drawn)
        self.view.shape_edited.connect(self._on_view_shape_edited)
        self.view.context_requested.connect(self._on_view_context_requested)
        self.tag_bar.tag_toggled.connect(self.toggle_tag)

    def set_session(self, session: ProjectSession | None) -> None:
        self.session = session
        self.frame, self.anns, self.position = None, [], None
        self.view.clear_image()
        if session is not None:
            session.annotations_changed.connect(self.reload)
            session.classes_changed.connect(self._on_session_classes_changed)
            session.frames_changed.connect(self._on_session_frames_changed)
            self._on_session_classes_changed()

    # ---- what is shown ------------------------------------------------------------------
    def show_hint(self, text: str, actions: list[QAction]) -> None:
        """Say what to do first instead of showing an empty canvas."""
        self.hint.show_text(text, actions)
        self._pages.setCurrentWidget(self.hint)

    def show_frame(self, source_id: int, index: int, image: QImage) -> None:
        """Show a decoded frame (and its annotations if it was captured)."""
        self._pages.setCurrentIndex(0)
        self.view.set_image(image)
        if (source_id, index) != self.position:
            self.position = (source_id, index)
            if self.view.selected_ids():
                self.view.select([])
            self._lookup_frame()
            self.reload()
        self._apply_pending_selection()

    def show_preview(self, image: QImage) -> None:
        """While scrubbing: an image near the position, without any frame's shapes."""
        self._pages.setCurrentIndex(0)
        self.view.set_image(image)
        if self.position is not None:
            self.position, self.frame = None, None
            self.reload()

    def select_when_shown(self, source_id: int, index: int, ann_ids: list[int]) -> None:
        """Select these shapes once frame `index` of the source is on screen (now if it is)."""
        self._pending_selection = ((source_id, index), list(ann_ids))
        self._apply_pending_selection()

    def _apply_pending_selection(self) -> None:
        if self._pending_selection and self._pending_selection[0] == self.position:
            ids = self._pending_selection[1]
            self._pending_selection = None
            self.view.select([i for i in ids if i in self.view.items_by_id])

    def _lookup_frame(self) -> None:
        self.frame = self.session.frame_at(*self.position) if self.position else None

    def reload(self) -> None:
        """Re-read the shown frame's annotations from the store."""
        if self.session is None:
            return
        self.anns = self.session.annotations(self.frame.id) if self.frame else []
        classes = {c.id: (c.name, c.color) for c in self.session.classes()}
        self.view.set_shapes(self.anns, classes)
        tags = {a.class_id for a in self.anns if a.kind == "tag"}
        self.tag_bar.set_tags(tags, enabled=self.view.editable and self.position is not None)
        shapes = [a for a in self.anns if a.kind != "tag"]
        self.shapes_changed.emit(len(shapes), sum(a.status == "proposed" for a in shapes))

    def _on_session_classes_changed(self) -> None:
        self.tag_bar.set_classes(self.session.classes())
        self.reload()

    def _on_session_frames_changed(self) -> None:
        self._lookup_frame()
        self.reload()

    def set_editable(self, editable: bool) -> None:
        self.view.set_editable(editable)
        self.tag_bar.set_tags(self.tag_bar.tagged(), enabled=editable and self.position is not None)

    # ---- edits --------------------------------------------------------------------------
    def _ensure_frame(self) -> Frame | None:
        if self.frame is None and self.capture_current is not None:
            self.frame = self.capture_current()
        return self.frame

    @reports_errors
    def _on_view_shape_drawn(self, kind: str, geometry) -> None:
        if self.frame is not None:
            ann = self.session.add_shape(self.frame.id, kind, geometry)
        else:
            ann = self._draw_capturing(kind, geometry)
        if ann is not None:
            self.view.select([ann.id])

    def _draw_capturing(self, kind: str, geometry) -> Annotation | None:
        """A shape drawn on a frame not yet captured captures it: one undo entry for both,
        and when the shape is refused no empty frame is left behind."""
        cls = self.session.class_by_id(self.session.require_class())
        stack = self.session.undo_stack
        ann = None
        stack.beginMacro(f"Add {kind} '{cls.name}' (captures the frame)")
        try:
            self._ensure_frame()
            if self.frame is not None:
                ann = self.session.add_shape(self.frame.id, kind, geometry, cls.id)
        finally:
            stack.endMacro()
            if ann is None:     # refused or failed: undo the capture (or the empty macro)
                stack.undo()
        return ann

    @reports_errors
    def _on_view_shape_edited(self, ann_id: int, geometry) -> None:
        self.session.set_geometry(ann_id, geometry)

    @reports_errors
    def delete_selected(self) -> None:
        ids = self.view.selected_ids()
        if ids:
            self.session.delete_annotations(ids, "Delete shape" if len(ids) == 1 else "Delete shapes")

    @reports_errors
    def set_class_of_selection(self, class_id: int) -> None:
        ids = self.view.selected_ids()
        if ids:
            self.session.set_class(ids, class_id)

    def _proposal_ids(self, selected_only: bool) -> list[int]:
        chosen = set(self.view.selected_ids()) if selected_only else None
        return [a.id for a in self.anns if a.status == "proposed" and self.view.is_shown(a)
                and (chosen is None or a.id in chosen)]

    def set_min_confidence(self, value: float) -> None:
        """Hide proposals below `value`; accept/reject all then act on those shown."""
        self.view.set_min_confidence(value)

    @reports_errors
    def accept_proposals(self, selected_only: bool = True) -> None:
        ids = self._proposal_ids(selected_only)
        if ids:
            self.session.accept_proposals(ids)

    @reports_errors
    def reject_proposals(self, selected_only: bool = True) -> None:
        ids = self._proposal_ids(selected_only)
        if ids:
            self.session.reject_proposals(ids)

    @reports_errors
    def toggle_tag(self, class_id: int) -> None:
        if not self.view.editable or self.position is None:
            self.reload()       # undo the button's own toggle
            return
        frame = self._ensure_frame()
        if frame is not None:
            self.session.toggle_tag(frame.id, class_id)

    def toggle_tag_number(self, number: int) -> None:
        """Alt+1..9: toggle the n-th frame tag."""
        classes = self.session.classes("tag") if self.session else []
        if 1 <= number <= len(classes):
            self.toggle_tag(classes[number - 1].id)

    def _on_view_context_requested(self, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.setObjectName("shapeMenu")
        class_menu = menu.addMenu("Class")
        for cls in self.session.classes("object"):
            class_menu.addAction(cls.name, lambda cid=cls.id: self.set_class_of_selection(cid))
        if self._proposal_ids(selected_only=True):
            menu.addAction("Accept proposal", self.accept_proposals)
            menu.addAction("Reject proposal", self.reject_proposals)
        menu.addAction("Delete", self.delete_selected)
        menu.popup(global_pos)
