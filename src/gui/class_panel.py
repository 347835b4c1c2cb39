"""The class panel: list with colour and usage count; add, rename, recolour, delete; 1-9 pick."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import (QColorDialog, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton,
                             QVBoxLayout, QWidget)

from src.gui import dialogs
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession


def color_icon(color: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClassPanel(QWidget):
    class_picked = pyqtSignal(int)      # the user chose a class (click or key 1-9)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("classPanel")
        self.session: ProjectSession | None = None
        self.list = QListWidget(self)
        self.list.setObjectName("classList")
        self.list.itemClicked.connect(self._on_list_item_clicked)
        self.list.itemDoubleClicked.connect(lambda _item: self.rename_current())
        buttons = QHBoxLayout()
        for text, slot, name in (("Add", self.add_class, "addClassButton"),
                                 ("Rename", self.rename_current, "renameClassButton"),
                                 ("Colour", self.recolor_current, "recolorClassButton"),
                                 ("Delete", self.delete_current, "deleteClassButton")):
            button = QPushButton(text, self)
            button.setObjectName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def set_session(self, session: ProjectSession | None) -> None:
        self.session = session
        if session is not None:
            session.classes_changed.connect(self.refresh)
            session.annotations_changed.connect(self.refresh)
            session.current_class_changed.connect(self._on_session_current_class_changed)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        if self.session is None:
            return
        counts = self.session.class_counts()
        for n, cls in enumerate(self.session.classes()):
            key = f"{n + 1}  " if n < 9 else "   "
            item = QListWidgetItem(color_icon(cls.color), f"{key}{cls.name}  ({counts.get(cls.id, 0)})")
            item.setData(Qt.ItemDataRole.UserRole, cls.id)
            self.list.addItem(item)
        self._on_session_current_class_changed(self.session.current_class_id or 0)

    def _on_session_current_class_changed(self, class_id: int) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == class_id:
                self.list.setCurrentItem(item)

    def current_class_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _on_list_item_clicked(self, item: QListWidgetItem) -> None:
        self.pick(item.data(Qt.ItemDataRole.UserRole))

    def pick(self, class_id: int) -> None:
        self.session.set_current_class(class_id)
        self.class_picked.emit(class_id)

    def pick_number(self, number: int) -> None:
        """Keys 1-9: the n-th class becomes current."""
        classes = self.session.classes() if self.session else []
        if 1 <= number <= len(classes):
            self.pick(classes[number - 1].id)

    @reports_errors
    def add_class(self) -> None:
        if self.session is None:
            return
        name = dialogs.ask_text(self, "Add class", "Class name:")
        if name:
            self.session.add_class(name)

    @reports_errors
    def rename_current(self) -> None:
        class_id = self.current_class_id()
        if class_id is None:
            return
        cls = self.session.class_by_id(class_id)
        name = dialogs.ask_text(self, "Rename class", "New name:", cls.name)
        if name and name != cls.name:
            self.session.edit_class(class_id, name=name)

    @reports_errors
    def recolor_current(self) -> None:
        class_id = self.current_class_id()
        if class_id is None:
            return
        cls = self.session.class_by_id(class_id)
        color = QColorDialog.getColor(QColor(cls.color), self, f"Colour of '{cls.name}'")
        if color.isValid():
            self.session.edit_class(class_id, color=color.name())

    @reports_errors
    def delete_current(self) -> None:
        """Refused (with the store's message) while annotations use the class, unless the user
        picks a class to reassign them to."""
        class_id = self.current_class_id()
        if class_id is None:
            return
        cls = self.session.class_by_id(class_id)
        used = self.session.class_usage(class_id)
        reassign = None
        if used:
            others = [c for c in self.session.classes() if c.id != class_id]
            reassign = dialogs.ask_reassign(self, cls, used, others)
        elif not dialogs.confirm(self, "Delete class", f"Delete the class '{cls.name}'?"):
            return
        self.session.delete_class(class_id, reassign_to=reassign)
