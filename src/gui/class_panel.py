"""The class panel: object classes (boxes, polygons; keys 1-9) and frame tags (whole-frame
labels; Alt+1-9) in two sections, each listing colour and usage count, with add, rename,
recolour and delete."""
from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import (QColorDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                             QMenu, QPushButton, QVBoxLayout, QWidget)

from src.db.records import LabelClass
from src.gui import dialogs
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession

# kind -> (title, object-name word, key prefix, hint while empty, hint once there are some)
SECTIONS = {
    "object": ("Object classes", "Class", "",
               "No object class yet: click Add to name what you will draw boxes around.",
               "Boxes and polygons. Click a class (or press 1-9) to draw with it."),
    "tag": ("Frame tags", "Tag", "Alt+",
            "No frame tag yet: add one to label whole frames (day, night, blurry...).",
            "Whole-frame labels: toggle them above the image or with Alt+1-9."),
}


def color_icon(color: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClassSection(QWidget):
    """The classes of one kind: a titled list and its Add / Rename / Colour / Delete."""
    item_clicked = pyqtSignal(int)          # class id

    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        title, word, _keys, hint, _ = SECTIONS[kind]
        self.setObjectName(f"{kind}Section")
        self.session: ProjectSession | None = None
        heading = QLabel(f"<b>{title}</b>", self)
        self.hint = QLabel(hint, self)
        self.hint.setObjectName(f"{kind}EmptyHint")
        self.hint.setWordWrap(True)
        self.hint.setMinimumHeight(2 * self.hint.fontMetrics().lineSpacing())  # buttons stay put
        self.list = QListWidget(self)
        self.list.setObjectName("classList" if kind == "object" else "tagList")
        self.list.itemClicked.connect(self._on_list_item_clicked)
        self.list.itemDoubleClicked.connect(self.rename_current)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu_requested)
        self.menu: QMenu | None = None
        buttons = QHBoxLayout()
        for text, slot, action in (("Add", self.add_class, "add"),
                                   ("Rename", self.rename_current, "rename"),
                                   ("Colour", self.recolor_current, "recolor"),
                                   ("Delete", self.delete_current, "delete")):
            button = QPushButton(text, self)
            button.setObjectName(f"{action}{word}Button")
            button.setToolTip(f"{text} {'an object class' if kind == 'object' else 'a frame tag'}")
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def fill(self, classes: list[LabelClass], counts: dict[int, int]) -> None:
        keys = SECTIONS[self.kind][2]
        self.list.clear()
        for n, cls in enumerate(classes):
            key = f"{keys}{n + 1}  " if n < 9 else "   "
            item = QListWidgetItem(color_icon(cls.color),
                                   f"{key}{cls.name}  ({counts.get(cls.id, 0)})")
            item.setData(Qt.ItemDataRole.UserRole, cls.id)
            self.list.addItem(item)
        empty, some = SECTIONS[self.kind][3:]
        self.hint.setText(some if classes else empty)

    def select(self, class_id: int) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == class_id:
                self.list.setCurrentItem(item)

    def current_class_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _on_list_item_clicked(self, item: QListWidgetItem) -> None:
        self.item_clicked.emit(item.data(Qt.ItemDataRole.UserRole))

    def _on_list_context_menu_requested(self, pos: QPoint) -> None:
        """Right click on a class: its commands, and turning it into the other kind."""
        item = self.list.itemAt(pos)
        if item is None or self.session is None:
            return
        self.list.setCurrentItem(item)
        self.menu = QMenu(self)
        self.menu.setObjectName(f"{self.kind}ClassMenu")
        for text, slot in (("Rename…", self.rename_current), ("Colour…", self.recolor_current),
                           ("Delete", self.delete_current)):
            self.menu.addAction(text, slot)
        self.menu.addSeparator()
        other = "tag" if self.kind == "object" else "object"
        convert = self.menu.addAction(
            "Make it a frame tag" if other == "tag" else "Make it an object class",
            lambda: self.set_current_kind(other))
        convert.setObjectName("convertKindAction")
        self.menu.popup(self.list.viewport().mapToGlobal(pos))

    @reports_errors
    def set_current_kind(self, kind: str) -> None:
        class_id = self.current_class_id()
        if class_id is not None and self.session is not None:
            self.session.set_class_kind(class_id, kind)

    @reports_errors
    def add_class(self) -> None:
        if self.session is None:
            return
        answer = dialogs.ask_new_class(self, self.kind)
        if answer is not None:
            name, kind = answer
            self.session.add_class(name, kind=kind)

    @reports_errors
    def rename_current(self) -> None:
        class_id = self.current_class_id()
        if class_id is None or self.session is None:
            return
        cls = self.session.class_by_id(class_id)
        name = dialogs.ask_text(self, "Rename class", "New name:", cls.name)
        if name and name != cls.name:
            self.session.edit_class(class_id, name=name)

    @reports_errors
    def recolor_current(self) -> None:
        class_id = self.current_class_id()
        if class_id is None or self.session is None:
            return
        cls = self.session.class_by_id(class_id)
        color = QColorDialog.getColor(QColor(cls.color), self, f"Colour of '{cls.name}'")
        if color.isValid():
            self.session.edit_class(class_id, color=color.name())

    @reports_errors
    def delete_current(self) -> None:
        """Refused (with the store's message) while annotations use the class, unless the user
        picks a class of the same kind to reassign them to."""
        class_id = self.current_class_id()
        if class_id is None or self.session is None:
            return
        cls = self.session.class_by_id(class_id)
        used = self.session.class_usage(class_id)
        reassign = None
        if used:
            others = [c for c in self.session.classes(cls.kind) if c.id != class_id]
            reassign = dialogs.ask_reassign(self, cls, used, others)
        elif not dialogs.confirm(self, "Delete class", f"Delete the class '{cls.name}'?"):
            return
        self.session.delete_class(class_id, reassign_to=reassign)


class ClassPanel(QWidget):
    class_picked = pyqtSignal(int)      # the user chose an object class (click or key 1-9)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("classPanel")
        self.session: ProjectSession | None = None
        self.objects = ClassSection("object", self)
        self.tags = ClassSection("tag", self)
        self.list = self.objects.list
        self.objects.item_clicked.connect(self.pick)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.objects, 3)
        layout.addSpacing(8)
        layout.addWidget(self.tags, 2)

    def set_session(self, session: ProjectSession | None) -> None:
        self.session = self.objects.session = self.tags.session = session
        if session is not None:
            session.classes_changed.connect(self.refresh)
            session.annotations_changed.connect(self.refresh)
            session.current_class_changed.connect(self.objects.select)
        self.refresh()

    def refresh(self) -> None:
        if self.session is None:
            self.objects.fill([], {})
            self.tags.fill([], {})
            return
        counts = self.session.class_counts()
        self.objects.fill(self.session.classes("object"), counts)
        self.tags.fill(self.session.classes("tag"), counts)
        self.objects.select(self.session.current_class_id or 0)

    def current_class_id(self) -> int | None:
        """The object class selected in the panel."""
        return self.objects.current_class_id()

    def pick(self, class_id: int) -> None:
        if self.session is None:
            return
        self.session.set_current_class(class_id)
        self.class_picked.emit(class_id)

    def pick_number(self, number: int) -> None:
        """Keys 1-9: the n-th object class becomes current."""
        classes = self.session.classes("object") if self.session else []
        if 1 <= number <= len(classes):
            self.pick(classes[number - 1].id)
