"""The annotator: tag row + canvas for the frame on screen, wired to the session's store calls."""
from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import QPoint, pyqtSignal
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QMenu, QVBoxLayout, QWidget

from src.db.records import Annotation, Frame
from src.gui.canvas.tag_bar import TagBar
from src.gui.canvas.view import AnnotationView
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession


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
        self.tag_bar = TagBar(self)
        self.view = AnnotationView(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tag_bar)
        layout.addWidget(self.view, 1)
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
    def show_frame(self, source_id: int, index: int, image: QImage) -> None:
        """Show a decoded frame (and its annotations if it was captured)."""
        self.view.set_image(image)
        if (source_id, index) != self.position:
            self.position = (source_id, index)
            if self.view.selected_ids():
                self.view.select([])
            self._lookup_frame()
            self.reload()

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
        frame = self._ensure_frame()
        if frame is not None:
            ann = self.session.add_shape(frame.id, kind, geometry)
            self.view.select([ann.id])

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
        return [a.id for a in self.anns if a.status == "proposed"
                and (chosen is None or a.id in chosen)]

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
        """Alt+1..9: toggle the tag of the n-th class."""
        classes = self.session.classes() if self.session else []
        if 1 <= number <= len(classes):
            self.toggle_tag(classes[number - 1].id)

    def _on_view_context_requested(self, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.setObjectName("shapeMenu")
        class_menu = menu.addMenu("Class")
        for cls in self.session.classes():
            class_menu.addAction(cls.name, lambda cid=cls.id: self.set_class_of_selection(cid))
        if self._proposal_ids(selected_only=True):
            menu.addAction("Accept proposal", self.accept_proposals)
            menu.addAction("Reject proposal", self.reject_proposals)
        menu.addAction("Delete", self.delete_selected)
        menu.popup(global_pos)
