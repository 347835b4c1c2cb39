"""Status bar: frame, cursor position in image pixels, counts, and the active-models slot
(a click opens Training › Models…)."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QLabel, QStatusBar

from src.db import model_versions as model_repo


class ClickableLabel(QLabel):
    clicked = pyqtSignal()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class StatusBar(QStatusBar):
    models_clicked = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frame_label = self._add("frameLabel", 220)
        self.cursor_label = self._add("cursorLabel", 130)
        self.counts_label = self._add("countsLabel", 260)
        self.active_models_label = self._add("activeModelsLabel", 160, ClickableLabel(self))
        self.active_models_label.setText("models: none")
        self.active_models_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.active_models_label.clicked.connect(self.models_clicked.emit)

    def _add(self, name: str, width: int, label: QLabel | None = None) -> QLabel:
        label = label or QLabel(self)
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

    def show_active_models(self, session) -> None:
        """The active version of each task that has versions ('—' when none of them is
        active); "models: none" when there is no version or no project."""
        versions = [] if session is None else model_repo.list_model_versions(session.conn)
        active = {m.task: m for m in versions if m.is_active}
        tasks = sorted({m.task for m in versions})
        text = ", ".join(f"{t}: {active[t].name} v{active[t].version}" if t in active
                         else f"{t}: —" for t in tasks)
        self.active_models_label.setText(f"models: {text or 'none'}")
        tips = [f"{t}: {active[t].display_name} ({active[t].path})" if t in active else
                f"{t}: no active version" for t in tasks]
        self.active_models_label.setToolTip(
            "\n".join(tips) + "\nclick to manage model versions" if tips else
            "no model yet: train one (Training › Train model…) or import one; click to "
            "manage model versions")
