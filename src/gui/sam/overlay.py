"""The mask overlay on the annotator's scene: a translucent filled mask (image pixels, so it
follows zoom and pan), the prompt points (green +, red −), and a second mask for the
original-vs-adapted comparison."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QImage, QPen, QPixmap
from PyQt6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsPixmapItem,
                             QGraphicsRectItem, QGraphicsScene)

POINT_PX = 5


def mask_pixmap(mask: np.ndarray, color: QColor, alpha: int = 110) -> QPixmap:
    h, w = mask.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[mask] = (color.red(), color.green(), color.blue(), alpha)
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(image.copy())


class MaskOverlay:
    """Items added to `scene` once and updated in place."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.mask_item = QGraphicsPixmapItem()
        self.mask_item.setZValue(5)
        self.compare_item = QGraphicsPixmapItem()
        self.compare_item.setZValue(4)
        self.box_item = QGraphicsRectItem()
        pen = QPen(QColor("#00e5ff"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.box_item.setPen(pen)
        self.box_item.setZValue(6)
        for item in (self.mask_item, self.compare_item, self.box_item):
            scene.addItem(item)
        self.points: list[QGraphicsEllipseItem] = []
        self.shown_mask: np.ndarray | None = None

    def show(self, mask: np.ndarray | None, points=(), box=None,
             compare: np.ndarray | None = None) -> None:
        self.shown_mask = mask
        self.mask_item.setPixmap(mask_pixmap(mask, QColor("#1e90ff")) if mask is not None
                                 else QPixmap())
        self.compare_item.setPixmap(mask_pixmap(compare, QColor("#ff8c00"), 90)
                                    if compare is not None else QPixmap())
        self.box_item.setRect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1])
                              if box is not None else QRectF())
        self.box_item.setVisible(box is not None)
        for item in self.points:
            self.scene.removeItem(item)
        self.points = [self._point(p.x, p.y, p.positive) for p in points]

    def clear(self) -> None:
        self.show(None)

    def _point(self, x: float, y: float, positive: bool) -> QGraphicsEllipseItem:
        item = QGraphicsEllipseItem(-POINT_PX, -POINT_PX, 2 * POINT_PX, 2 * POINT_PX)
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        item.setPos(QPointF(x, y))
        item.setBrush(QBrush(QColor("#00c853" if positive else "#ff1744")))
        item.setPen(QPen(QColor("white"), 1))
        item.setZValue(7)
        self.scene.addItem(item)
        return item
