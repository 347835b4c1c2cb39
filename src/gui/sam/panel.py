"""The Segment Anything dock: model state, candidates, Track (N frames, progress, stop),
LIT-LoRA (learn toggle, update, discard, status) and original-vs-adapted for the frame."""
from __future__ import annotations

from PyQt6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                             QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)


def _button(text: str, name: str, parent: QWidget) -> QPushButton:
    button = QPushButton(text, parent)
    button.setObjectName(name)
    return button


class SamPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("samPanel")
        self.status_label = QLabel("Segment Anything: open a project", self)
        self.status_label.setObjectName("samStatus")
        self.status_label.setWordWrap(True)
        self.candidate_label = QLabel("", self)
        self.candidate_label.setObjectName("samCandidate")
        self.tolerance = QDoubleSpinBox(self)
        self.tolerance.setObjectName("samTolerance")
        self.tolerance.setRange(0.0, 20.0)
        self.tolerance.setSingleStep(0.5)
        self.tolerance.setValue(1.5)
        self.tolerance.setSuffix(" px")
        self.tolerance.setToolTip("Polygon simplification: the most a point may stray")
        # track
        self.track_frames = QSpinBox(self)
        self.track_frames.setObjectName("samTrackFrames")
        self.track_frames.setRange(1, 1000)
        self.track_frames.setValue(10)
        self.track_button = _button("Track next", "samTrackButton", self)
        self.track_button.setToolTip("Follow the selected shape through the next frames "
                                     "(SAM 2); each mask becomes a proposal")
        self.stop_button = _button("Stop", "samStopButton", self)
        self.end_button = _button("End track", "samEndTrackButton", self)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("samProgress")
        self.progress.setTextVisible(True)
        # learning
        self.learn_box = QGroupBox("LIT-LoRA", self)
        self.learn_check = QCheckBox("Learn from corrections", self.learn_box)
        self.learn_check.setObjectName("samLearnCheck")
        self.update_button = _button("Update now", "samUpdateButton", self.learn_box)
        self.discard_button = _button("Discard adapter", "samDiscardButton", self.learn_box)
        self.learn_label = QLabel("", self.learn_box)
        self.learn_label.setObjectName("samLearnStatus")
        self.learn_label.setWordWrap(True)
        self.compare_label = QLabel("", self.learn_box)
        self.compare_label.setObjectName("samCompare")
        self.compare_label.setWordWrap(True)
        self.use_original = _button("Use original", "samUseOriginal", self.learn_box)
        self.use_adapted = _button("Use adapted", "samUseAdapted", self.learn_box)
        self.auto_accept = QDoubleSpinBox(self.learn_box)
        self.auto_accept.setObjectName("samAutoAccept")
        self.auto_accept.setRange(0.0, 1.01)
        self.auto_accept.setSingleStep(0.05)
        self.auto_accept.setValue(1.01)
        self.auto_accept.setSpecialValueText("")
        self.auto_accept.setToolTip("Use the adapted decoder automatically when its predicted "
                                    "IoU on this frame reaches this (1.01: never)")
        self._layout()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Polygon tolerance", self.tolerance)
        track = QHBoxLayout()
        track.addWidget(self.track_button)
        track.addWidget(self.track_frames)
        track.addWidget(QLabel("frames", self))
        stops = QHBoxLayout()
        stops.addWidget(self.stop_button)
        stops.addWidget(self.end_button)
        learn = QVBoxLayout(self.learn_box)
        learn.addWidget(self.learn_check)
        row = QHBoxLayout()
        row.addWidget(self.update_button)
        row.addWidget(self.discard_button)
        learn.addLayout(row)
        learn.addWidget(self.learn_label)
        learn.addWidget(self.compare_label)
        row = QHBoxLayout()
        row.addWidget(self.use_original)
        row.addWidget(self.use_adapted)
        learn.addLayout(row)
        auto = QFormLayout()
        auto.addRow("Auto-accept adapted at IoU ≥", self.auto_accept)
        learn.addLayout(auto)
        layout = QVBoxLayout(self)
        for widget in (self.status_label, self.candidate_label):
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addLayout(track)
        layout.addLayout(stops)
        layout.addWidget(self.progress)
        layout.addWidget(self.learn_box)
        layout.addStretch(1)
