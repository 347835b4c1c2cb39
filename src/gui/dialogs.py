"""The few dialogs the GUI asks or tells through; tests replace the blocking ones."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (QApplication, QButtonGroup, QDialog, QDialogButtonBox, QFormLayout,
                             QHBoxLayout, QInputDialog, QLabel, QLineEdit, QMessageBox,
                             QPlainTextEdit, QPushButton, QRadioButton, QVBoxLayout, QWidget)

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
    elif isinstance(exc, OSError):
        box.setText(f"Could not read or write a file: {exc.strerror or exc}")
        advice = "Nothing was half-written; free some disk space or fix the folder's " \
                 "permissions, then try again."
        where = f"File: {exc.filename}\n" if exc.filename is not None else ""
        box.setInformativeText(where + advice)
    else:
        box.setText(f"Unexpected error: {exc}")
    box.open()
    return box


class UnexpectedErrorDialog(QDialog):
    """A bug, shown instead of a crash: what happened, where the traceback is logged, the
    traceback itself, and "Copy details" to paste it into a bug report."""

    def __init__(self, parent: QWidget | None, summary: str, details: str,
                 log_path: Path | None) -> None:
        super().__init__(parent)
        self.setObjectName("unexpectedErrorDialog")
        self.setWindowTitle("LabelLoop — unexpected error")
        self.count = 1
        self.message = QLabel(self)
        self.message.setObjectName("errorSummary")
        self.message.setWordWrap(True)
        self.details = QPlainTextEdit(self)
        self.details.setObjectName("errorDetails")
        self.details.setReadOnly(True)
        self.details.setPlainText(details)
        copy = QPushButton("Copy details", self)
        copy.setObjectName("copyDetailsButton")
        copy.clicked.connect(self._on_copy_clicked)
        close = QPushButton("Close", self)
        close.setObjectName("closeErrorButton")
        close.setDefault(True)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(copy)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.details, 1)
        layout.addLayout(buttons)
        self._summary, self._log_path = summary, log_path
        self._show_summary()
        self.resize(640, 360)

    def _show_summary(self) -> None:
        logged = f"The details were written to {self._log_path}." if self._log_path else \
            "The details could not be written to the log."
        more = f" ({self.count} errors)" if self.count > 1 else ""
        self.message.setText(f"Something went wrong{more}: {self._summary}\n\nYour work is saved "
                             f"and the window keeps running. {logged}")

    def add(self, summary: str, details: str) -> None:
        """Another error while this one is shown: one dialog, every traceback."""
        self.count += 1
        self._summary = summary
        self.details.appendPlainText("\n" + details)
        self._show_summary()

    def _on_copy_clicked(self) -> None:
        QApplication.clipboard().setText(f"{self.message.text()}\n\n{self.details.toPlainText()}")


def show_unexpected_error(parent: QWidget | None, summary: str, details: str,
                          log_path: Path | None) -> UnexpectedErrorDialog:
    """Show (window-modal, without blocking) or extend the one unexpected-error dialog."""
    shown = parent.findChild(UnexpectedErrorDialog) if parent is not None else None
    if shown is not None and shown.isVisible():
        shown.add(summary, details)
        return shown
    dialog = UnexpectedErrorDialog(parent, summary, details, log_path)
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog


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


class NewClassDialog(QDialog):
    """Name a new class and choose its kind: an object class or a frame tag."""

    def __init__(self, parent: QWidget | None, kind: str = "object") -> None:
        super().__init__(parent)
        self.setObjectName("newClassDialog")
        self.setWindowTitle("Add class")
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("classNameEdit")
        self.name_edit.setPlaceholderText("car, person, night...")
        self.object_radio = QRadioButton("Object class: boxes and polygons (keys 1-9)", self)
        self.object_radio.setObjectName("objectKindRadio")
        self.tag_radio = QRadioButton("Frame tag: labels the whole frame (Alt+1-9)", self)
        self.tag_radio.setObjectName("tagKindRadio")
        group = QButtonGroup(self)
        for radio in (self.object_radio, self.tag_radio):
            group.addButton(radio)
        (self.tag_radio if kind == "tag" else self.object_radio).setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(False)
        self.name_edit.textChanged.connect(self._on_name_edit_text_changed)
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.object_radio)
        layout.addWidget(self.tag_radio)
        layout.addWidget(buttons)

    def _on_name_edit_text_changed(self, text: str) -> None:
        self.ok_button.setEnabled(bool(text.strip()))

    def answer(self) -> tuple[str, str]:
        return self.name_edit.text().strip(), "tag" if self.tag_radio.isChecked() else "object"


def ask_new_class(parent: QWidget | None, kind: str = "object") -> tuple[str, str] | None:
    """(name, kind) of the class the user names, or None when cancelled."""
    dialog = NewClassDialog(parent, kind)
    try:
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.answer()[0]:
            return dialog.answer()
        return None
    finally:
        dialog.deleteLater()
