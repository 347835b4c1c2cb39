"""Transport controls under the canvas: source, play/pause, steps, slider, frame box, time."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton,
                             QWidget)

from src.db.records import MediaSource


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--.---"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:06.3f}"


class PlayerBar(QWidget):
    seek_requested = pyqtSignal(int)
    source_chosen = pyqtSignal(int)               # source id

    def __init__(self, actions: dict[str, QAction], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("playerBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("sourceCombo")
        self.source_combo.setMinimumContentsLength(14)
        self.source_combo.activated.connect(self._on_combo_activated)
        layout.addWidget(self.source_combo)
        for name in ("back10", "back1", "play", "forward1", "forward10"):
            button = QToolButton(self)
            button.setDefaultAction(actions[name])
            button.setObjectName(f"{name}Button")
            layout.addWidget(button)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("frameSlider")
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        layout.addWidget(self.slider, 1)
        self.frame_box = QSpinBox(self)
        self.frame_box.setObjectName("frameBox")
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.valueChanged.connect(self._on_box_value_changed)
        layout.addWidget(self.frame_box)
        self.time_label = QLabel(self)
        self.time_label.setObjectName("timeLabel")
        self.time_label.setMinimumWidth(190)
        layout.addWidget(self.time_label)
        capture = QToolButton(self)
        capture.setObjectName("captureButton")
        capture.setDefaultAction(actions["capture"])
        capture.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        layout.addWidget(capture)
        self._updating = False

    def set_sources(self, sources: list[MediaSource], current_id: int | None) -> None:
        self.source_combo.clear()
        for source in sources:
            self.source_combo.addItem(f"{source.name} ({source.frame_count} fr)", source.id)
        index = self.source_combo.findData(current_id)
        self.source_combo.setCurrentIndex(max(index, 0))

    def set_range(self, frame_count: int) -> None:
        self._updating = True
        self.slider.setRange(0, max(frame_count - 1, 0))
        self.frame_box.setRange(0, max(frame_count - 1, 0))
        self._updating = False

    def set_position(self, index: int, frame_count: int, seconds: float | None) -> None:
        self._updating = True
        self.slider.setValue(index)
        self.frame_box.setValue(index)
        self._updating = False
        self.time_label.setText(f"frame {index} / {max(frame_count - 1, 0)}   {format_time(seconds)}")

    def _on_combo_activated(self, row: int) -> None:
        source_id = self.source_combo.itemData(row)
        if source_id is not None:
            self.source_chosen.emit(source_id)

    def _on_slider_value_changed(self, value: int) -> None:
        if not self._updating:
            self.seek_requested.emit(value)

    def _on_box_value_changed(self, value: int) -> None:
        if not self._updating:
            self.seek_requested.emit(value)
