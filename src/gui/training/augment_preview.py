"""A grid of augmented copies of one frame, boxes drawn (the dataset dialog's preview)."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QGridLayout, QLabel, QWidget

CELL = 200          # px: the longer side of each preview image
COLUMNS = 3


def pixmap_of(image: np.ndarray) -> QPixmap:
    """A BGR uint8 array as a QPixmap (copied: the array may go away)."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    qimage = QImage(image.data, w, h, image.strides[0], QImage.Format.Format_BGR888)
    return QPixmap.fromImage(qimage.copy())


class PreviewGrid(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("previewGrid")
        self.grid = QGridLayout(self)
        self.grid.setSpacing(4)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.labels: list[QLabel] = []

    def show_images(self, images: list[np.ndarray]) -> None:
        self.clear()
        for i, image in enumerate(images):
            label = QLabel(self)
            label.setObjectName(f"previewImage{i}")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setPixmap(pixmap_of(image).scaled(
                CELL, CELL, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
            self.grid.addWidget(label, i // COLUMNS, i % COLUMNS)
            self.labels.append(label)

    def clear(self) -> None:
        for label in self.labels:
            self.grid.removeWidget(label)
            label.deleteLater()
        self.labels = []
