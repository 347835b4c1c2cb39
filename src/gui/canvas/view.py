"""The annotator view: shows one frame and its shapes; zoom, pan, draw, select, move, resize.

Scene coordinates are image pixels (the image sits at 0,0), so a point under the mouse maps to
image space with `mapToScene` alone. The view only turns gestures into signals
(`shape_drawn`, `shape_edited`, `selection_changed`); the annotator stores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from PyQt6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPixmap
from PyQt6.QtWidgets import QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from src.db.records import Annotation
from src.gui.canvas import shape_math
from src.gui.canvas.items import ShapeItem

HANDLE_PX = 7          # half-size of a grab handle, in screen pixels
CLOSE_PX = 8           # a polygon click this near its first point closes it
ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 64.0
MODES = ("edit", "box", "polygon")


@dataclass
class _Drag:
    """What the left (or middle) button is doing between press and release."""
    kind: str                                   # 'draw_box' | 'move' | 'handle' | 'pan'
    start_view: QPoint
    start_scene: QPointF
    item: ShapeItem | None = None
    handle: int = -1
    geometry: object = None
    extra: dict = field(default_factory=dict)


class AnnotationView(QGraphicsView):
    shape_drawn = pyqtSignal(str, object)        # kind, geometry (image pixels)
    shape_edited = pyqtSignal(int, object)       # annotation id, new geometry
    selection_changed = pyqtSignal(list)         # annotation ids
    cursor_moved = pyqtSignal(float, float)      # image pixels
    space_tapped = pyqtSignal()                  # Space pressed and released without panning
    context_requested = pyqtSignal(QPoint)       # global position, after selecting under it

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("annotationView")
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setBackgroundBrush(QColor("#2b2b2b"))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)
        self._pixmap = QGraphicsPixmapItem()
        self._pixmap.setZValue(-10)
        self._pixmap.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.scene().addItem(self._pixmap)
        self._preview = QGraphicsPathItem()
        self._preview.setZValue(10)
        pen = QPen(QColor("#ffff00"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._preview.setPen(pen)
        self.scene().addItem(self._preview)
        self.image_size: tuple[int, int] | None = None
        self._image_key: int | None = None          # QImage.cacheKey of the image shown
        self.items_by_id: dict[int, ShapeItem] = {}
        self.mode = "box"
        self.editable = True
        self._drag: _Drag | None = None
        self._polygon: list[tuple[float, float]] = []
        self._space_held = False
        self._space_panned = False
        self._last_cursor = QPointF()
        self._auto_fit = True           # refit on resize until the user zooms or pans
        self.min_confidence = 0.0       # proposals below it are hidden (the toolbar's slider)

    # ---- image and shapes ---------------------------------------------------------------
    def set_image(self, image: QImage | QPixmap) -> None:
        """Show a frame; zoom and pan stay as they are unless the image size changes."""
        if isinstance(image, QImage) and image.cacheKey() == self._image_key:
            return                  # the same image again (scrubbing near one keyframe)
        self._image_key = image.cacheKey() if isinstance(image, QImage) else None
        pixmap = image if isinstance(image, QPixmap) else QPixmap.fromImage(image)
        self._pixmap.setPixmap(pixmap)
        size = (pixmap.width(), pixmap.height())
        if size != self.image_size:
            self.image_size = size
            w, h = size
            margin = 4 * max(w, h)
            self.setSceneRect(QRectF(-margin, -margin, w + 2 * margin, h + 2 * margin))
            self.zoom_to_fit()

    def clear_image(self) -> None:
        self._image_key = None
        self._pixmap.setPixmap(QPixmap())
        self.image_size = None
        self.set_shapes([], {})

    def set_shapes(self, anns: list[Annotation], classes: dict[int, tuple[str, str]]) -> None:
        """Replace the shapes (tags are not drawn); the selection is kept by annotation id."""
        self.cancel_drawing()
        selected = set(self.selected_ids())
        for item in self.items_by_id.values():
            self.scene().removeItem(item)
        self.items_by_id = {}
        for ann in anns:
            if ann.kind == "tag" or not ann.geometry:
                continue
            name, color = classes.get(ann.class_id, (f"class {ann.class_id}", "#ffffff"))
            item = ShapeItem(ann, name, color)
            item.setVisible(self.is_shown(ann))
            item.set_selected(ann.id in selected and item.isVisible())
            self.scene().addItem(item)
            self.items_by_id[ann.id] = item
        if selected != set(self.selected_ids()):
            self.selection_changed.emit(self.selected_ids())

    def is_shown(self, ann: Annotation) -> bool:
        """False for a proposal less confident than `min_confidence`."""
        return not (ann.status == "proposed" and ann.confidence is not None
                    and ann.confidence < self.min_confidence)

    def set_min_confidence(self, value: float) -> None:
        """Hide proposals below `value` (and drop them from the selection), live."""
        self.min_confidence = value
        for item in self.items_by_id.values():
            item.setVisible(self.is_shown(item.ann))
        hidden = [i for i in self.selected_ids() if not self.items_by_id[i].isVisible()]
        if hidden:
            self.select([i for i in self.selected_ids() if i not in hidden])
        self.viewport().update()

    def selected_ids(self) -> list[int]:
        return [i for i, item in self.items_by_id.items() if item.selected]

    def select(self, ids: list[int]) -> None:
        for ann_id, item in self.items_by_id.items():
            item.set_selected(ann_id in ids)
        self.viewport().update()
        self.selection_changed.emit(self.selected_ids())

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        self.cancel_drawing()
        self.mode = mode
        self._restore_cursor()

    def _restore_cursor(self) -> None:
        edit = self.mode == "edit"
        self.viewport().setCursor(Qt.CursorShape.ArrowCursor if edit else Qt.CursorShape.CrossCursor)

    def set_editable(self, editable: bool) -> None:
        """While a video plays nothing can be drawn or edited."""
        if not editable:
            self.cancel_drawing()
        self.editable = editable

    def cancel_drawing(self) -> None:
        """Esc: forget the shape being drawn or the drag in progress."""
        if self._drag and self._drag.item is not None:
            self._drag.item.set_geometry(self._drag.item.ann.geometry)
        self._drag = None
        self._polygon = []
        self._preview.setPath(QPainterPath())

    @property
    def drawing(self) -> bool:
        return bool(self._polygon) or (self._drag is not None and self._drag.kind == "draw_box")

    # ---- zoom and pan -------------------------------------------------------------------
    @property
    def auto_fit(self) -> bool:
        """True until the user zooms or pans (the image is refitted on resize)."""
        return self._auto_fit

    def scale_factor(self) -> float:
        return self.transform().m11()

    def zoom_to_fit(self) -> None:
        self._auto_fit = True
        if self.image_size:
            w, h = self.image_size
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Zoom keeping the image point under `anchor` (viewport pixels) where it is."""
        self._auto_fit = False
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        factor = min(max(self.scale_factor() * factor, MIN_SCALE), MAX_SCALE) / self.scale_factor()
        before = self.mapToScene(anchor)
        self.scale(factor, factor)
        after = self.mapFromScene(before)
        self.pan_by(after.x() - anchor.x(), after.y() - anchor.y())

    def pan_by(self, dx: float, dy: float) -> None:
        """Scroll the view by (dx, dy) viewport pixels."""
        self._auto_fit = False
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._auto_fit:
            self.zoom_to_fit()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP ** steps, event.position().toPoint())
        event.accept()

    # ---- mouse --------------------------------------------------------------------------
    def _image_point(self, pos: QPoint) -> tuple[float, float]:
        p = self.mapToScene(pos)
        return (p.x(), p.y())

    def mousePressEvent(self, event) -> None:
        pos = event.position().toPoint()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and self._space_held):
            self._space_panned = True
            self._drag = _Drag("pan", pos, self.mapToScene(pos))
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button == Qt.MouseButton.RightButton:
            self._on_right_press(pos, event.globalPosition().toPoint())
            return
        if button != Qt.MouseButton.LeftButton or not self.editable or not self.image_size:
            return
        if self._polygon:
            self._on_polygon_click(pos)
            return
        handle = self._handle_at(pos)
        if handle is not None:
            item, index = handle
            self._drag = _Drag("handle", pos, self.mapToScene(pos), item, index, item.geometry)
        elif self.mode == "polygon":
            self._on_polygon_click(pos)
        elif self.mode == "box" and not self._in_selected(pos):
            self._drag = _Drag("draw_box", pos, self.mapToScene(pos))
        else:
            self._press_select(pos, event.modifiers())

    def _press_select(self, pos: QPoint, modifiers) -> None:
        item = self._item_at(pos)
        if modifiers & Qt.KeyboardModifier.ControlModifier and item is not None:
            ids = set(self.selected_ids()) ^ {item.ann_id}
            self.select(sorted(ids))
            return
        if item is None:
            self.select([])
            return
        if not item.selected:
            self.select([item.ann_id])
        self._drag = _Drag("move", pos, self.mapToScene(pos), item, geometry=item.geometry)

    def _on_right_press(self, pos: QPoint, global_pos: QPoint) -> None:
        if self.drawing:
            return
        item = self._item_at(pos)
        if item is not None and not item.selected:
            self.select([item.ann_id])
        if self.selected_ids():
            self.context_requested.emit(global_pos)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position().toPoint()
        scene = self.mapToScene(pos)
        self._last_cursor = scene
        self.cursor_moved.emit(scene.x(), scene.y())
        drag = self._drag
        if drag is None:
            if self._polygon:
                self._update_polygon_preview(scene)
            return
        if drag.kind == "pan":
            delta = pos - drag.start_view
            drag.start_view = pos
            self.pan_by(-delta.x(), -delta.y())
        elif drag.kind == "draw_box":
            rect = QRectF(drag.start_scene, scene).normalized()
            path = QPainterPath()
            path.addRect(rect)
            self._preview.setPath(path)
        else:
            drag.item.set_geometry(self._dragged_geometry(drag, scene))

    def _dragged_geometry(self, drag: _Drag, scene: QPointF):
        w, h = self.image_size
        ann = drag.item.ann
        if drag.kind == "move":
            dx, dy = scene.x() - drag.start_scene.x(), scene.y() - drag.start_scene.y()
            return shape_math.translate(ann.kind, drag.geometry, dx, dy, w, h)
        point = (scene.x(), scene.y())
        if ann.kind == "box":
            return shape_math.resize_box(drag.geometry, drag.handle, point, w, h)
        return shape_math.move_vertex(drag.geometry, drag.handle, point, w, h)

    def mouseReleaseEvent(self, event) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        pos = event.position().toPoint()
        scene = self.mapToScene(pos)
        if drag.kind == "pan":
            self._restore_cursor()
        elif drag.kind == "draw_box":
            self._preview.setPath(QPainterPath())
            w, h = self.image_size
            box = shape_math.box_from_corners((drag.start_scene.x(), drag.start_scene.y()),
                                              (scene.x(), scene.y()), w, h)
            if shape_math.is_degenerate("box", box):
                self._press_select(pos, event.modifiers())
                self._drag = None
            else:
                self.shape_drawn.emit("box", box)
        else:
            geometry = self._dragged_geometry(drag, scene)
            if geometry != drag.geometry:
                self.shape_edited.emit(drag.item.ann_id, geometry)

    def mouseDoubleClickEvent(self, event) -> None:
        if self._polygon and len(self._polygon) >= 3:
            self.finish_polygon()
        else:
            super().mouseDoubleClickEvent(event)

    # ---- polygons -----------------------------------------------------------------------
    def _on_polygon_click(self, pos: QPoint) -> None:
        if len(self._polygon) >= 3:
            first = self.mapFromScene(QPointF(*self._polygon[0]))
            if math.dist((first.x(), first.y()), (pos.x(), pos.y())) <= CLOSE_PX:
                self.finish_polygon()
                return
        self._polygon.append(self._image_point(pos))
        self._update_polygon_preview(self.mapToScene(pos))

    def _update_polygon_preview(self, cursor: QPointF) -> None:
        path = QPainterPath(QPointF(*self._polygon[0]))
        for point in self._polygon[1:]:
            path.lineTo(QPointF(*point))
        path.lineTo(cursor)
        self._preview.setPath(path)

    def finish_polygon(self) -> None:
        """Enter / click on the first point: emit the polygon if it has at least 3 points."""
        points, self._polygon = self._polygon, []
        self._preview.setPath(QPainterPath())
        if not self.image_size:
            return
        polygon = shape_math.polygon_from_clicks(points, *self.image_size)
        if not shape_math.is_degenerate("polygon", polygon):
            self.shape_drawn.emit("polygon", polygon)

    # ---- hit testing --------------------------------------------------------------------
    def _item_at(self, pos: QPoint) -> ShapeItem | None:
        scene = self.mapToScene(pos)
        hits = [i for i in self.items_by_id.values()
                if i.isVisible() and i.contains_point(scene)]
        # Smallest first: a box inside a bigger one stays reachable.
        return min(hits, key=lambda i: i.path().boundingRect().width()
                   * i.path().boundingRect().height(), default=None)

    def _in_selected(self, pos: QPoint) -> bool:
        scene = self.mapToScene(pos)
        return any(i.selected and i.contains_point(scene) for i in self.items_by_id.values())

    def _handles(self, item: ShapeItem) -> list[tuple[float, float]]:
        if item.ann.kind == "box":
            return shape_math.box_handles(item.geometry)
        return [tuple(p) for p in item.geometry]

    def _handle_at(self, pos: QPoint) -> tuple[ShapeItem, int] | None:
        for item in self.items_by_id.values():
            if not item.selected:
                continue
            for index, (x, y) in enumerate(self._handles(item)):
                p = self.mapFromScene(QPointF(x, y))
                if abs(p.x() - pos.x()) <= HANDLE_PX and abs(p.y() - pos.y()) <= HANDLE_PX:
                    return item, index
        return None

    def handle_view_pos(self, ann_id: int, index: int) -> QPoint:
        """Where handle `index` of a shape is on the viewport (tests and tooltips use it)."""
        x, y = self._handles(self.items_by_id[ann_id])[index]
        return self.mapFromScene(QPointF(x, y))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        size = HANDLE_PX / self.scale_factor()
        painter.setPen(QPen(QColor("black"), 0))
        for item in self.items_by_id.values():
            if item.selected:
                painter.setBrush(item.color.lighter(150))
                for x, y in self._handles(item):
                    painter.drawRect(QRectF(x - size / 2, y - size / 2, size, size))

    # ---- keys ---------------------------------------------------------------------------
    def event(self, event) -> bool:
        # Claim Space (pan while held; a tap still plays/pauses) and drawing keys before the
        # window's shortcuts see them.
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in (
                Qt.Key.Key_Space, Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.key() == Qt.Key.Key_Space or self._polygon:
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held, self._space_panned = True, False
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape:
            if self.drawing or self._drag:
                self.cancel_drawing()
            else:
                self.select([])
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._polygon:
            self.finish_polygon()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._restore_cursor()
            if not self._space_panned:
                self.space_tapped.emit()
            return
        super().keyReleaseEvent(event)
