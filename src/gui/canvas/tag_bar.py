"""The row of frame tags above the canvas: one toggle per tag class (Alt+1..9)."""
from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from src.db.records import LabelClass


class TagBar(QWidget):
    tag_toggled = pyqtSignal(int)          # class id

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("tagBar")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(4, 2, 4, 2)
        self._layout.addWidget(QLabel("Frame tags:"))
        self.empty_hint = QLabel("none yet: add a frame tag in the class panel", self)
        self.empty_hint.setObjectName("noTagsHint")
        self.empty_hint.setEnabled(False)
        self._layout.addWidget(self.empty_hint)
        self._layout.addStretch(1)
        self.buttons: dict[int, QToolButton] = {}

    def set_classes(self, classes: list[LabelClass]) -> None:
        """Show a toggle for each frame-tag class among `classes` (object classes have none)."""
        for button in self.buttons.values():
            self._layout.removeWidget(button)
            button.deleteLater()
        self.buttons = {}
        tags = [c for c in classes if c.kind == "tag"]
        self.empty_hint.setVisible(not tags)
        for n, cls in enumerate(tags):
            button = QToolButton(self)
            button.setObjectName(f"tagButton_{cls.id}")
            button.setText(f"{cls.name}" + (f"  (Alt+{n + 1})" if n < 9 else ""))
            button.setCheckable(True)
            button.setStyleSheet(f"QToolButton:checked {{ background: {cls.color}; color: black;"
                                 " font-weight: bold; }")
            button.clicked.connect(lambda _checked, cid=cls.id: self.tag_toggled.emit(cid))
            self._layout.insertWidget(self._layout.count() - 1, button)
            self.buttons[cls.id] = button

    def set_tags(self, class_ids: set[int], enabled: bool) -> None:
        for class_id, button in self.buttons.items():
            button.setChecked(class_id in class_ids)
            button.setEnabled(enabled)

    def tagged(self) -> set[int]:
        return {cid for cid, b in self.buttons.items() if b.isChecked()}
