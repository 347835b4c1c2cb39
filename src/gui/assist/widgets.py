"""Widgets of assisted labeling: the proposals' confidence filter (toolbar), the job's
progress with Cancel (status bar), and the small dialog asking which frames and how."""
from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                             QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                             QSizePolicy, QSlider, QSpinBox, QWidget)

MODES = ("next", "range", "propagate")


class ConfidenceFilter(QWidget):
    """"Proposals ≥ 0.40": a slider that hides proposals below its value, live."""
    threshold_changed = pyqtSignal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("confidenceFilter")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("confidenceSlider")
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.setFixedWidth(120)
        self.slider.setToolTip("Hide proposals whose confidence is below this value "
                               "(accept/reject all act on the proposals shown)")
        self.value_label = QLabel(self)
        self.value_label.setObjectName("confidenceValue")
        self.value_label.setMinimumWidth(34)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Proposals ≥", self))
        layout.addWidget(self.slider)
        layout.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self._on_slider_value_changed(0)

    @property
    def threshold(self) -> float:
        return self.slider.value() / 100

    @pyqtSlot(int)
    def _on_slider_value_changed(self, value: int) -> None:
        self.value_label.setText(f"{value / 100:.2f}")
        self.threshold_changed.emit(value / 100)


class JobProgress(QWidget):
    """What the background job is doing, how far it is, and Cancel; hidden when idle."""
    cancel_requested = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("assistJob")
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("assistProgress")
        self.bar.setFixedWidth(140)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("assistCancelButton")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.label, self.bar, self.cancel_button):
            layout.addWidget(widget)
        self.hide()

    def begin(self, text: str, total: int) -> None:
        self.label.setText(text)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.show()

    def set_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)

    @pyqtSlot()
    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText("cancelling…")
        self.cancel_requested.emit()


@dataclass
class AssistChoice:
    """What the dialog asked for: frames (or, to propagate, how many after this one)."""
    frames: list[int]
    conf: float
    two_stage: bool


class AssistDialog(QDialog):
    """Which frames to pre-label (the next N, or a range) or how far to propagate, the
    detector's confidence threshold, and whether the crop classifier relabels the boxes."""

    def __init__(self, mode: str, current: int, frame_count: int, conf: float,
                 two_stage: bool | None, parent=None) -> None:
        super().__init__(parent)
        assert mode in MODES, mode
        self.mode, self.current, self.frame_count = mode, current, frame_count
        self.setObjectName("assistDialog")
        self.setWindowTitle({"next": "Pre-label the next frames", "range": "Pre-label a range",
                             "propagate": "Propagate the selected boxes"}[mode])
        form = QFormLayout(self)
        self.count_spin = self._spin("assistCountSpin", 1, max(frame_count - current - 1, 1), 10)
        self.first_spin = self._spin("assistFirstSpin", 0, frame_count - 1, current)
        self.last_spin = self._spin("assistLastSpin", 0, frame_count - 1,
                                    min(current + 9, frame_count - 1))
        if mode == "range":
            form.addRow("First frame:", self.first_spin)
            form.addRow("Last frame (included):", self.last_spin)
            self.count_spin.hide()          # kept (frames() reads it) but not shown
        else:
            form.addRow("Frames after this one:", self.count_spin)
            self.first_spin.hide()
            self.last_spin.hide()
        self.conf_spin = QDoubleSpinBox(self)
        self.conf_spin.setObjectName("assistConfSpin")
        self.conf_spin.setRange(0.001, 1.0)
        self.conf_spin.setDecimals(3)
        self.conf_spin.setSingleStep(0.05)
        self.conf_spin.setValue(conf)
        self.conf_spin.setToolTip("The detector keeps boxes at least this confident")
        form.addRow("Confidence threshold:", self.conf_spin)
        self.two_stage_check = QCheckBox("Relabel boxes with the active crop classifier", self)
        self.two_stage_check.setObjectName("assistTwoStageCheck")
        self.two_stage_check.setChecked(bool(two_stage))
        self.two_stage_check.setEnabled(two_stage is not None)
        if two_stage is None:
            self.two_stage_check.setToolTip("there is no active crop classifier")
        if mode != "propagate":
            form.addRow(self.two_stage_check)
        else:
            self.two_stage_check.hide()     # tracking runs the detector alone
        self.summary = QLabel(self)
        self.summary.setObjectName("assistSummary")
        form.addRow(self.summary)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for spin in (self.count_spin, self.first_spin, self.last_spin):
            spin.valueChanged.connect(self._on_spin_value_changed)
        self._on_spin_value_changed(0)

    def _spin(self, name: str, low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setObjectName(name)
        spin.setRange(low, max(low, high))
        spin.setValue(value)
        return spin

    def frames(self) -> list[int]:
        if self.mode == "range":
            return list(range(self.first_spin.value(), self.last_spin.value() + 1))
        last = min(self.current + self.count_spin.value(), self.frame_count - 1)
        return list(range(self.current + 1, last + 1))

    @pyqtSlot(int)
    def _on_spin_value_changed(self, _value: int) -> None:
        frames = self.frames()
        ok = bool(frames)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        self.summary.setText(f"frames {frames[0]}–{frames[-1]} ({len(frames)})" if ok else
                             "no frame: the last frame must not be before the first")

    def choice(self) -> AssistChoice:
        return AssistChoice(self.frames(), self.conf_spin.value(),
                            self.two_stage_check.isChecked() and self.mode != "propagate")
