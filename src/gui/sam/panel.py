"""The Segment Anything dock: model state (Load model), the embedding of the frame on screen,
candidates, Track (N frames, progress, stop), a registered adapter version to track with,
LIT-LoRA (learn toggle, update, discard, register as a model version, status) and
original-vs-adapted for the frame. The controller puts it in a scroll area: a long message
(which file to put where) wraps and scrolls instead of being clipped in a short dock."""
from __future__ import annotations

from PyQt6.QtCore import Qt
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
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.load_button = _button("Load model", "samLoadButton", self)
        self.load_button.setToolTip("Load the SAM model now: the frames you open are then "
                                    "embedded in the background, so clicks answer at once")
        self.embed_label = QLabel("", self)
        self.embed_label.setObjectName("samEmbedStatus")
        self.embed_label.setWordWrap(True)
        self.candidate_label = QLabel("", self)
        self.candidate_label.setObjectName("samCandidate")
        self.candidate_label.setWordWrap(True)       # a long line widened the dock past the screen
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
        self.adapter_button = _button("Track with adapter version…", "samUseAdapterButton", self)
        self.adapter_button.setToolTip("Track with a registered SAM adapter (Models…, kind "
                                       "sam_adapter) instead of the base decoder")
        self.adapter_label = QLabel("tracking with the base decoder", self)
        self.adapter_label.setObjectName("samAdapterInUse")
        self.adapter_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("samProgress")
        self.progress.setTextVisible(True)
        # learning
        self.learn_box = QGroupBox("LIT-LoRA", self)
        self.learn_check = QCheckBox("Learn from corrections", self.learn_box)
        self.learn_check.setObjectName("samLearnCheck")
        self.update_button = _button("Update now", "samUpdateButton", self.learn_box)
        self.discard_button = _button("Discard adapter", "samDiscardButton", self.learn_box)
        self.register_button = _button("Register as model version…", "samRegisterButton",
                                       self.learn_box)
        self.register_button.setToolTip("Keep this object's adapter as a model version (kind "
                                        "sam_adapter, with its SAM base) in Models…")
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
        learn.addWidget(self.register_button)
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
        for widget in (self.status_label, self.load_button, self.embed_label,
                       self.candidate_label):
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addLayout(track)
        layout.addLayout(stops)
        layout.addWidget(self.adapter_button)
        layout.addWidget(self.adapter_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.learn_box)
        layout.addStretch(1)
