"""The main toolbar: the tools (select, box, polygon), zoom to fit, capture, and the class a
new shape gets (the same current class as the class panel and keys 1–9)."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtGui import QAction, QColor, QIcon, QPixmap
from PyQt6.QtWidgets import QComboBox, QLabel, QToolBar, QWidget

from src.gui.session import ProjectSession


def _swatch(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ToolBar(QToolBar):
    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("mainToolBar")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.session: ProjectSession | None = None
        for name in ("mode_edit", "mode_box", "mode_polygon"):
            self.addAction(actions[name])
        self.addSeparator()
        self.addAction(actions["zoom_fit"])
        self.addAction(actions["capture"])
        self.addSeparator()
        self.addWidget(QLabel(" Class: ", self))
        self.class_combo = QComboBox(self)
        self.class_combo.setObjectName("toolbarClassCombo")
        self.class_combo.setMinimumContentsLength(12)
        self.class_combo.setToolTip("The class new shapes get (keys 1–9 pick it too)")
        self.class_combo.activated.connect(self._on_combo_activated)
        self.addWidget(self.class_combo)
        for name in ("mode_edit", "mode_box", "mode_polygon", "zoom_fit", "capture"):
            button = self.widgetForAction(actions[name])
            if button is not None:
                button.setObjectName(f"toolbar_{name}")

    def add_assist_group(self, actions: dict[str, QAction], confidence: QWidget) -> None:
        """Assisted labeling, one group: pre-label, propagate, the proposals' confidence."""
        self.addSeparator()
        for name, text in (("prelabel_frame", "Pre-label"), ("propagate", "Propagate")):
            actions[name].setIconText(text)
            self.addAction(actions[name])
            self.widgetForAction(actions[name]).setObjectName(f"toolbar_{name}")
        self.addWidget(confidence)

    def set_session(self, session: ProjectSession | None) -> None:
        self.session = session
        if session is not None:
            session.classes_changed.connect(self._fill)
            session.current_class_changed.connect(self._on_session_current_class_changed)
        self._fill()

    def _object_classes(self):
        return [c for c in self.session.classes() if getattr(c, "kind", "object") == "object"]

    def _fill(self) -> None:
        self.class_combo.clear()
        if self.session is None:
            self.class_combo.setEnabled(False)
            return
        for cls in self._object_classes():
            self.class_combo.addItem(_swatch(cls.color), cls.name, cls.id)
        self.class_combo.setEnabled(self.class_combo.count() > 0)
        if not self.class_combo.count():
            self.class_combo.addItem("(add a class first)", None)
        self._on_session_current_class_changed(self.session.current_class_id or 0)

    def _on_session_current_class_changed(self, class_id: int) -> None:
        row = self.class_combo.findData(class_id)
        if row >= 0:
            self.class_combo.setCurrentIndex(row)

    @pyqtSlot(int)
    def _on_combo_activated(self, row: int) -> None:
        class_id = self.class_combo.itemData(row)
        if self.session is not None and class_id is not None:
            self.session.set_current_class(class_id)


class LearningToolBar(QToolBar):
    """Learning from corrections (issue 14), on a row of its own: the toggle, the session's
    status, Update now, Promote, Discard. (Its status text would not fit beside the tools.)"""

    LABELS = {"learn_toggle": "Learn from my corrections", "learn_update": "Update now",
              "learn_promote": "Promote…", "learn_discard": "Discard…"}

    def __init__(self, actions: dict[str, QAction], status: QWidget,
                 parent: QWidget | None = None) -> None:
        super().__init__("Learning", parent)
        self.setObjectName("learningToolBar")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addAction(actions["learn_toggle"])
        self.addWidget(status)
        for name in ("learn_update", "learn_promote", "learn_discard"):
            self.addAction(actions[name])
        for name, text in self.LABELS.items():
            button = self.widgetForAction(actions[name])
            if button is not None:
                button.setObjectName(f"toolbar_{name}")
                button.setText(text)
