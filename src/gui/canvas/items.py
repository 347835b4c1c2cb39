"""Graphics items for shapes: outline and fill in the class colour, a name label, dashed
outline for model proposals. Items only draw; the view does all the editing."""
from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from src.db.records import Annotation


class ShapeLabel(QGraphicsItem):
    """The class name (and confidence) on a coloured tab; stays the same size at any zoom."""

    def __init__(self, text: str, color: QColor, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.text = text
        self.color = color
        self.font = QFont()
        self.font.setPointSize(8)
        self._rect = QRectF(0, -15, 7 * len(text) + 8, 15)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.fillRect(self._rect, self.color)
        painter.setFont(self.font)
        light = self.color.lightness() > 150
        painter.setPen(QColor("black") if light else QColor("white"))
        painter.drawText(self._rect.adjusted(4, 0, 0, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.text)


class ShapeItem(QGraphicsPathItem):
    """One box or polygon annotation, in scene = image pixel coordinates."""

    def __init__(self, ann: Annotation, class_name: str, color: str) -> None:
        super().__init__()
        self.ann = ann
        self.color = QColor(color)
        self.selected = False
        self.label = ShapeLabel(self._label_text(class_name), self.color, self)
        self.set_geometry(ann.geometry)
        self._restyle()

    @property
    def ann_id(self) -> int:
        return self.ann.id

    @property
    def proposed(self) -> bool:
        return self.ann.status == "proposed"

    def _label_text(self, class_name: str) -> str:
        if self.proposed and self.ann.confidence is not None:
            return f"{class_name} {self.ann.confidence:.2f}"
        return class_name

    def set_geometry(self, geometry) -> None:
        """Show a (possibly in-progress) geometry without touching the stored annotation."""
        self.geometry = geometry
        path = QPainterPath()
        if self.ann.kind == "box":
            x1, y1, x2, y2 = geometry
            path.addRect(QRectF(QPointF(x1, y1), QPointF(x2, y2)))
            anchor = QPointF(x1, y1)
        else:
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in geometry]))
            path.closeSubpath()
            top = min(geometry, key=lambda p: (p[1], p[0]))
            anchor = QPointF(*top)
        self.setPath(path)
        self.label.setPos(anchor)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self._restyle()

    def contains_point(self, point: QPointF) -> bool:
        return self.path().contains(point)

    def _restyle(self) -> None:
        pen = QPen(self.color, 3 if self.selected else 2)
        pen.setCosmetic(True)
        if self.proposed:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        fill = QColor(self.color)
        fill.setAlpha(90 if self.selected else (25 if self.proposed else 45))
        self.setBrush(QBrush(fill))
        self.setZValue(2 if self.selected else 1)
