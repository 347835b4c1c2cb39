"""Transport controls under the canvas: source, play/pause, steps, slider, frame box, time."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QAction, QFontMetrics
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProxyStyle, QSlider, QSpinBox,
                             QStyle, QToolButton, QWidget)

from src.db.records import MediaSource


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--.---"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:06.3f}"


SOURCE_NAME_PX = 180        # the source selector shows names up to this wide, elided in the middle


class JumpClickStyle(QProxyStyle):
    """A left click on the slider's track jumps there (and can go on dragging), as in video
    players, instead of paging by one step."""

    def styleHint(self, hint, option=None, widget=None, returnData=None) -> int:
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, returnData)


class PlayerBar(QWidget):
    seek_requested = pyqtSignal(int)
    source_chosen = pyqtSignal(int)               # source id
    scrub_requested = pyqtSignal(int)             # the slider is being dragged over this frame
    scrub_ended = pyqtSignal(int)                 # the slider was released on this frame
    edit_finished = pyqtSignal()                  # Enter in the frame box: give the keys back

    def __init__(self, actions: dict[str, QAction], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("playerBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("sourceCombo")
        self.source_combo.setMinimumContentsLength(14)
        self.source_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source_combo.activated.connect(self._on_combo_activated)
        layout.addWidget(self.source_combo)
        for name in ("back10", "back1", "play", "forward1", "forward10"):
            button = QToolButton(self)
            button.setDefaultAction(actions[name])
            button.setObjectName(f"{name}Button")
            layout.addWidget(button)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("frameSlider")
        self.slider.setMinimumWidth(160)               # the other controls never squeeze it away
        self._slider_style = JumpClickStyle()          # kept: the slider does not own it
        self.slider.setStyle(self._slider_style)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.slider.sliderReleased.connect(self._on_slider_released)
        layout.addWidget(self.slider, 1)
        self.frame_box = QSpinBox(self)
        self.frame_box.setObjectName("frameBox")
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.valueChanged.connect(self._on_box_value_changed)
        self.frame_box.lineEdit().returnPressed.connect(self._on_box_return_pressed)
        layout.addWidget(self.frame_box)
        self.time_label = QLabel(self)
        self.time_label.setObjectName("timeLabel")
        # Fixed to the widest text it shows, so the slider never resizes under a drag.
        self.time_label.setFixedWidth(self.time_label.fontMetrics().horizontalAdvance(
            "≈ frame 000000 / 000000   (showing 000000)") + 8)
        layout.addWidget(self.time_label)
        capture = QToolButton(self)
        capture.setObjectName("captureButton")
        capture.setDefaultAction(actions["capture"])
        capture.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        layout.addWidget(capture)
        self._updating = False

    def set_sources(self, sources: list[MediaSource], current_id: int | None) -> None:
        self.source_combo.clear()
        metrics = QFontMetrics(self.source_combo.font())
        for row, source in enumerate(sources):
            text = f"{source.name} ({source.frame_count} fr)"
            self.source_combo.addItem(
                metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, SOURCE_NAME_PX), source.id)
            self.source_combo.setItemData(row, f"{source.name}\n{source.path}",
                                          Qt.ItemDataRole.ToolTipRole)
        index = self.source_combo.findData(current_id)
        self.source_combo.setCurrentIndex(max(index, 0))
        self.source_combo.setToolTip(self.source_combo.itemData(
            self.source_combo.currentIndex(), Qt.ItemDataRole.ToolTipRole) or "")

    def set_range(self, frame_count: int) -> None:
        self._updating = True
        self.slider.setRange(0, max(frame_count - 1, 0))
        self.frame_box.setRange(0, max(frame_count - 1, 0))
        self._updating = False

    def set_position(self, index: int, frame_count: int, seconds: float | None,
                     approximate_of: int | None = None) -> None:
        """Show the position; `approximate_of` = the frame on screen while scrubbing, when it
        is a nearby keyframe or cached frame rather than `index` itself."""
        self._updating = True
        if not self.slider.isSliderDown():
            self.slider.setValue(index)
        self.frame_box.setValue(index)
        self._updating = False
        last = max(frame_count - 1, 0)
        if approximate_of is not None and approximate_of != index:
            self.time_label.setText(f"≈ frame {index} / {last}   (showing {approximate_of})")
        else:
            self.time_label.setText(f"frame {index} / {last}   {format_time(seconds)}")

    def _on_combo_activated(self, row: int) -> None:
        source_id = self.source_combo.itemData(row)
        if source_id is not None:
            self.source_chosen.emit(source_id)

    def _on_slider_value_changed(self, value: int) -> None:
        if self._updating:
            return
        if self.slider.isSliderDown():
            self.scrub_requested.emit(value)
        else:
            self.seek_requested.emit(value)

    @pyqtSlot()
    def _on_slider_released(self) -> None:
        self.scrub_ended.emit(self.slider.value())

    @pyqtSlot()
    def _on_box_return_pressed(self) -> None:
        self.edit_finished.emit()

    def _on_box_value_changed(self, value: int) -> None:
        if not self._updating:
            self.seek_requested.emit(value)
