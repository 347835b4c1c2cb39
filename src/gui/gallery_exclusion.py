"""The gallery's "Exclude from datasets": a right-click menu on the thumbnails that marks the
selected frames (stored in the project; every dataset build leaves them out) and the marker
drawn on an excluded frame's thumbnail."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QPoint, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QMenu

from src.gui.guard import reports_errors

if TYPE_CHECKING:
    from src.gui.gallery import Gallery

EXCLUDED_TEXT = "excluded from datasets"


def mark_excluded(pixmap: QPixmap) -> QPixmap:
    """A copy of a thumbnail crossed out, with a red 'not in datasets' strip along its top."""
    marked = QPixmap(pixmap)
    painter = QPainter(marked)
    red = QColor("#d01c1c")
    painter.setPen(QPen(red, 2))
    painter.drawLine(0, 0, marked.width(), marked.height())
    strip = QRectF(0, 0, marked.width(), 15)
    painter.fillRect(strip, QColor(208, 28, 28, 220))
    painter.setPen(QColor("white"))
    painter.drawText(strip, Qt.AlignmentFlag.AlignCenter, "not in datasets")
    painter.end()
    return marked


class ExclusionMenu:
    """Right click on the gallery: exclude the selected frames from datasets, or include
    them again. The menu pops up without blocking (and stays reachable as `menu`)."""

    def __init__(self, gallery: "Gallery") -> None:
        self.gallery = gallery
        self.menu: QMenu | None = None
        view = gallery.view
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_view_menu_requested)

    def _on_view_menu_requested(self, pos: QPoint) -> None:
        gallery = self.gallery
        if gallery.model is None:
            return
        index = gallery.view.indexAt(pos)
        if index.isValid() and not gallery.view.selectionModel().isSelected(index):
            gallery.view.setCurrentIndex(index)
        frames = gallery.selected_frames()
        if not frames:
            return
        ids = [f.id for f in frames]
        excluded = all(i in gallery.model.excluded for i in ids)
        self.menu = QMenu(gallery)
        self.menu.setObjectName("galleryContextMenu")
        action = self.menu.addAction(
            f"{'Include in' if excluded else 'Exclude from'} datasets ({len(ids)} frame(s))")
        action.setObjectName("excludeFromDatasetsAction")
        action.triggered.connect(lambda _checked=False: self.set_excluded(ids, not excluded))
        self.menu.popup(gallery.view.viewport().mapToGlobal(pos))

    @reports_errors
    def set_excluded(self, frame_ids: list[int], excluded: bool) -> None:
        """Through the session: one undoable step; the gallery redraws on its signal."""
        self.gallery.session.set_excluded(frame_ids, excluded)
