"""The Segment tool's gestures on the annotator view, turned into signals: left click → a
positive point, right click → a negative one, left drag → a box prompt, Enter → accept,
Esc → discard, Tab → next candidate. An event filter, active only while the tool is chosen,
so the view's own box/polygon/select code is untouched; the middle button and the wheel
still pan and zoom."""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainterPath, QPen
from PyQt6.QtWidgets import QGraphicsPathItem

DRAG_PX = 5          # a press that moves farther than this is a box drag


class SegmentGestures(QObject):
    point_added = pyqtSignal(float, float, bool)     # image x, y, positive
    box_drawn = pyqtSignal(list)                     # [x1, y1, x2, y2] image pixels
    accept_requested = pyqtSignal()
    discard_requested = pyqtSignal()
    cycle_requested = pyqtSignal()

    def __init__(self, view) -> None:
        super().__init__(view)
        self.view = view
        self.active = False
        self._press = None                           # (viewport pos, scene pos)
        self._dragging = False
        self._preview = QGraphicsPathItem()
        pen = QPen(QColor("#00e5ff"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._preview.setPen(pen)
        self._preview.setZValue(11)
        view.scene().addItem(self._preview)
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)

    def set_active(self, active: bool) -> None:
        self.active = active
        self._press, self._dragging = None, False
        self._preview.setPath(QPainterPath())
        if active:
            self.view.cancel_drawing()
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def eventFilter(self, obj, event) -> bool:
        if not self.active or not self.view.image_size or not self.view.editable:
            return False
        if obj is self.view:
            return self._key_event(event)
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            return self._on_press(event)
        if kind == QEvent.Type.MouseMove and self._press is not None:
            return self._on_move(event)
        if kind == QEvent.Type.MouseButtonRelease and self._press is not None:
            return self._on_release(event)
        if kind == QEvent.Type.MouseButtonDblClick:
            return event.button() != Qt.MouseButton.MiddleButton
        return False

    def _on_press(self, event) -> bool:
        pos = event.position().toPoint()
        if event.button() == Qt.MouseButton.RightButton:
            x, y = self._clamped(self.view.mapToScene(pos))
            self.point_added.emit(x, y, False)
            return True
        if event.button() != Qt.MouseButton.LeftButton:
            return False                             # middle: the view pans
        self._press, self._dragging = (pos, self.view.mapToScene(pos)), False
        return True

    def _on_move(self, event) -> bool:
        pos = event.position().toPoint()
        start_view, start_scene = self._press
        if (pos - start_view).manhattanLength() > DRAG_PX:
            self._dragging = True
        if self._dragging:
            path = QPainterPath()
            path.addRect(QRectF(start_scene, self.view.mapToScene(pos)).normalized())
            self._preview.setPath(path)
        return True

    def _on_release(self, event) -> bool:
        _, start_scene = self._press
        end = self.view.mapToScene(event.position().toPoint())
        self._press = None
        self._preview.setPath(QPainterPath())
        if self._dragging:
            (x1, y1), (x2, y2) = self._clamped(start_scene), self._clamped(end)
            box = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                self.box_drawn.emit(box)
        else:
            x, y = self._clamped(start_scene)
            self.point_added.emit(x, y, True)
        self._dragging = False
        return True

    def _key_event(self, event) -> bool:
        keys = {Qt.Key.Key_Return: self.accept_requested, Qt.Key.Key_Enter: self.accept_requested,
                Qt.Key.Key_Escape: self.discard_requested, Qt.Key.Key_Tab: self.cycle_requested}
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in keys:
            event.accept()
            return True
        if event.type() == QEvent.Type.KeyPress and event.key() in keys:
            keys[event.key()].emit()
            return True
        return False

    def _clamped(self, p: QPointF) -> tuple[float, float]:
        w, h = self.view.image_size
        return (min(max(p.x(), 0.0), w - 1.0), min(max(p.y(), 0.0), h - 1.0))
