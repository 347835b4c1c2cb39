"""Status bar: frame, cursor position in image pixels, counts, and the active-models slot."""
from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QStatusBar


class StatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frame_label = self._add("frameLabel", 220)
        self.cursor_label = self._add("cursorLabel", 130)
        self.counts_label = self._add("countsLabel", 260)
        # Later issues show the active models here.
        self.active_models_label = self._add("activeModelsLabel", 160)
        self.active_models_label.setText("models: none")

    def _add(self, name: str, width: int) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setMinimumWidth(width)
        self.addPermanentWidget(label)
        return label

    def show_frame(self, text: str) -> None:
        self.frame_label.setText(text)

    def show_cursor(self, x: float, y: float, size: tuple[int, int] | None) -> None:
        inside = size is not None and 0 <= x < size[0] and 0 <= y < size[1]
        self.cursor_label.setText(f"x {int(x)}  y {int(y)}" if inside else "")

    def show_counts(self, shapes: int, proposals: int, frames: int) -> None:
        text = f"{shapes} shapes"
        if proposals:
            text += f" ({proposals} proposed)"
        self.counts_label.setText(f"{text} · {frames} captured frames")
