"""Driving the GUI like a user: mouse on the annotator view, modal dialogs answered through
their widgets, and the click-everything walk every window should survive."""
from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from PyQt6 import sip
from PyQt6.QtCore import QPoint, QPointF, Qt, QTimer
from PyQt6.QtGui import QAction
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import (QAbstractButton, QApplication, QColorDialog, QDialogButtonBox,
                             QFileDialog, QLineEdit, QMenu, QMessageBox, QPushButton, QToolButton,
                             QWidget)

# The tiny synthetic video of the GUI fixtures (tests/gui/conftest.py).
VIDEO_W, VIDEO_H, VIDEO_FRAMES, VIDEO_FPS = 96, 64, 40, 10.0


def view_point(view, x: float, y: float) -> QPoint:
    """The viewport pixel showing image point (x, y)."""
    return view.mapFromScene(QPointF(x, y))


def drag(view, start: QPoint, end: QPoint, steps: int = 4,
         button=Qt.MouseButton.LeftButton) -> None:
    port = view.viewport()
    QTest.mousePress(port, button, Qt.KeyboardModifier.NoModifier, start)
    for k in range(1, steps + 1):
        QTest.mouseMove(port, start + (end - start) * (k / steps))
    QTest.mouseRelease(port, button, Qt.KeyboardModifier.NoModifier, end)


def click(view, point: QPoint, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mouseClick(view.viewport(), button, Qt.KeyboardModifier.NoModifier, point)


def open_main_window(qtbot, project_root, size: tuple[int, int] = (900, 700)):
    """The real main window on a project, shown at `size`, once its first frame is on
    screen (qtbot closes it at the end of the test)."""
    from src.gui.main_window import MainWindow

    win = MainWindow(project_root)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitUntil(lambda: win.player.image is not None and bool(win.annotator.view.image_size))
    return win


def wait_frame(qtbot, win, index: int) -> None:
    """Wait until the player shows frame `index`."""
    qtbot.waitUntil(lambda: win.player.index == index and win.annotator.position[1] == index)


# ---- answering modal dialogs and clicking everything --------------------------------------
# A modal dialog blocks the click that opened it in a nested event loop; a timer running in
# that loop finds it with QApplication.activeModalWidget() and answers it through its widgets.

_names = itertools.count(1)


def unique_text() -> str:
    return f"name{next(_names)}"


def dialog_button(dialog: QWidget, *roles) -> QAbstractButton | None:
    """The first button of the dialog's button box(es) with one of `roles`."""
    for box in dialog.findChildren(QDialogButtonBox):
        for button in box.buttons():
            if box.buttonRole(button) in roles and button.isVisible() and button.isEnabled():
                return button
    return None


def fill_text(edit: QLineEdit, text: str) -> None:
    """Replace the text of a line edit by typing, as a user does."""
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_Delete)
    QTest.keyClicks(edit, text)


def click_button(button: QAbstractButton) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


_ACCEPT = (QDialogButtonBox.ButtonRole.AcceptRole, QDialogButtonBox.ButtonRole.YesRole)
_REJECT = (QDialogButtonBox.ButtonRole.RejectRole, QDialogButtonBox.ButtonRole.NoRole)


def default_answer(dialog: QWidget, text: str | None = None) -> str:
    """Answer a modal dialog as a cooperative user: text inputs filled, colour and confirm
    accepted, file dialogs cancelled, error dialogs closed. Returns what it did."""
    if isinstance(dialog, QFileDialog):
        click_button(dialog_button(dialog, *_REJECT))
        return "cancelled file dialog"
    if isinstance(dialog, QMessageBox):
        button = (dialog.button(QMessageBox.StandardButton.Yes)
                  or dialog.button(QMessageBox.StandardButton.Ok)
                  or dialog.button(QMessageBox.StandardButton.Close)
                  or dialog.buttons()[0])
        click_button(button)
        return f"message box '{dialog.text()[:60]}'"
    if not isinstance(dialog, QColorDialog):
        for edit in dialog.findChildren(QLineEdit):
            if edit.isVisible() and edit.isEnabled() and not edit.isReadOnly():
                fill_text(edit, text or unique_text())
    button = dialog_button(dialog, *_ACCEPT) or next(
        (b for b in dialog.findChildren(QPushButton) if b.isDefault() and b.isVisible()), None)
    if button is None:
        QTest.keyClick(dialog, Qt.Key.Key_Escape)
        return f"escaped {type(dialog).__name__}"
    click_button(button)
    return f"accepted {type(dialog).__name__}"


class ModalAnswerer:
    """While active, answers every modal dialog that shows up with `answer(dialog)`.

    Each answer runs from its own zero-delay timer, so a dialog opened by answering another
    (a confirmation after a name) is answered in turn. Exceptions are kept, not raised into Qt.
    """

    def __init__(self, answer=default_answer, interval_ms: int = 20) -> None:
        self.answer = answer
        self.log: list[str] = []
        self.errors: list[BaseException] = []
        self._busy: set[int] = set()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)

    def __enter__(self) -> "ModalAnswerer":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or id(dialog) in self._busy or not dialog.isVisible():
            return
        self._busy.add(id(dialog))
        QTimer.singleShot(0, lambda: self._answer(dialog))

    def _answer(self, dialog: QWidget) -> None:
        try:
            if not sip.isdeleted(dialog) and dialog.isVisible():
                self.log.append(self.answer(dialog))
        except Exception as exc:  # noqa: BLE001 — reported by the test, never into Qt
            self.errors.append(exc)
        finally:
            self._busy.discard(id(dialog))


def wait_no_modal(qtbot, timeout: int = 5000) -> None:
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=timeout)


def clickable_buttons(root: QWidget) -> list[QAbstractButton]:
    """Visible, enabled push and tool buttons under `root` (Qt's own internals left out)."""
    return [b for b in root.findChildren(QAbstractButton)
            if isinstance(b, (QPushButton, QToolButton)) and not sip.isdeleted(b)
            and b.isVisible() and b.isEnabled() and not b.objectName().startswith("qt_")]


def menu_actions(window) -> list[QAction]:
    """Every action reachable from the menu bar, submenus opened first (so those filled when
    shown, like Open recent, have their entries)."""
    found: list[QAction] = []

    def walk(menu: QMenu) -> None:
        menu.popup(window.mapToGlobal(window.rect().center()))
        menu.hide()
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu())
            elif not action.isSeparator():
                found.append(action)
    for action in window.menuBar().actions():
        if action.menu() is not None:
            walk(action.menu())
    return found


def click_everything(qtbot, window, *, skip_actions=("action_quit",), rounds: int = 3) -> list[str]:
    """Click every enabled push/tool button and trigger every enabled menu action of
    `window` (and window shortcut actions), answering dialogs with `default_answer`; buttons
    that appear on the way are clicked in the next round. Returns what was done."""
    done: list[str] = []
    clicked: set[int] = set()
    with ModalAnswerer() as answerer:
        for _ in range(rounds):
            fresh = [b for b in clickable_buttons(window) if id(b) not in clicked]
            if not fresh:
                break
            for button in fresh:
                if sip.isdeleted(button) or not (button.isVisible() and button.isEnabled()):
                    continue
                clicked.add(id(button))
                done.append(f"click {button.objectName() or button.text()!r}")
                click_button(button)
                wait_no_modal(qtbot)
        actions = menu_actions(window) + [a for a in QWidget.actions(window) if a.menu() is None]
        for action in dict.fromkeys(actions):
            if sip.isdeleted(action) or action.objectName() in skip_actions:
                continue
            if action.isEnabled():
                done.append(f"trigger {action.objectName() or action.text()!r}")
                action.trigger()
                wait_no_modal(qtbot)
    assert not answerer.errors, answerer.errors
    return done + answerer.log


def integrity_check(db_path: Path) -> list[str]:
    """`PRAGMA integrity_check` and `foreign_key_check` of a project store: [] when sound."""
    conn = sqlite3.connect(db_path)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [repr(r) for r in conn.execute("PRAGMA foreign_key_check")]
    finally:
        conn.close()
    return problems


def answer_modals(qtbot, trigger, *answers) -> list[str]:
    """Run `trigger()` (a click) and answer the modal dialogs it opens, in order, with
    `answers` (each takes the dialog); waits until none is left open."""
    queue = list(answers)

    def next_answer(dialog):
        return queue.pop(0)(dialog) if queue else default_answer(dialog)
    with ModalAnswerer(next_answer) as answerer:
        trigger()
        wait_no_modal(qtbot)
    assert not answerer.errors, answerer.errors
    assert not queue, f"{len(queue)} dialog(s) expected but not shown"
    return answerer.log


def new_class_answer(name: str, kind: str = "object"):
    """Answer the Add class dialog: type the name, choose the kind, click OK."""
    def answer(dialog):
        fill_text(dialog.findChild(QLineEdit, "classNameEdit"), name)
        click_button(dialog.findChild(QAbstractButton, f"{kind}KindRadio"))
        click_button(dialog_button(dialog, *_ACCEPT))
        return f"new {kind} class {name}"
    return answer


def add_class_by_clicks(qtbot, window, name: str, kind: str = "object") -> None:
    """Click the class panel's Add of the `kind` section and name the class."""
    word = "Tag" if kind == "tag" else "Class"
    button = window.class_panel.findChild(QPushButton, f"add{word}Button")
    answer_modals(qtbot, lambda: click_button(button), new_class_answer(name, kind))
