"""Status bar: frame, cursor position in image pixels, counts, and the active-models slot."""
from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QStatusBar

from src.db import model_versions as model_repo


class StatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frame_label = self._add("frameLabel", 220)
        self.cursor_label = self._add("cursorLabel", 130)
        self.counts_label = self._add("countsLabel", 260)
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

    def show_active_models(self, session) -> None:
        """The active model version of each task in the session's store ("models: none" when
        there is none or no project)."""
        active = [] if session is None else \
            [m for m in model_repo.list_model_versions(session.conn) if m.is_active]
        active.sort(key=lambda m: m.task)
        text = ", ".join(f"{m.task}: {m.name} v{m.version}" for m in active)
        self.active_models_label.setText(f"models: {text or 'none'}")
        self.active_models_label.setToolTip("\n".join(f"{m.task}: {m.path}" for m in active)
                                            or "no active model: train one, or activate a version")
