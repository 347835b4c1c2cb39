"""The few dialogs the GUI asks or tells through; tests replace the blocking ones."""
from __future__ import annotations

from PyQt6.QtWidgets import QInputDialog, QMessageBox, QWidget

from src.db.records import LabelClass
from src.errors import LabelLoopError


def show_error(parent: QWidget | None, exc: BaseException) -> QMessageBox:
    """Show an error without blocking the event loop (window-modal); returns the box."""
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("LabelLoop")
    if isinstance(exc, LabelLoopError):
        box.setText(exc.message)
        details = [f"File: {exc.path}" if exc.path else "", f"Field: {exc.field}" if exc.field else "",
                   exc.hint or ""]
        box.setInformativeText("\n".join(d for d in details if d))
    else:
        box.setText(f"Unexpected error: {exc}")
    box.open()
    return box


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_text(parent: QWidget | None, title: str, label: str, text: str = "") -> str | None:
    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value if ok and value.strip() else None


def ask_reassign(parent: QWidget | None, cls: LabelClass, used: int,
                 others: list[LabelClass]) -> int | None:
    """The class to move `cls`'s annotations to before deleting it, or None to keep it."""
    if not others:
        return None
    names = [c.name for c in others]
    name, ok = QInputDialog.getItem(
        parent, "Delete class",
        f"'{cls.name}' is used by {used} annotation(s).\nReassign them to:", names, 0, False)
    if not ok:
        return None
    return others[names.index(name)].id
