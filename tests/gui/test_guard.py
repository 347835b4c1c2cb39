"""Nothing a user does kills the app: signal arguments, unexpected exceptions in any thread,
and a full disk during capture or import all end in a dialog, with the store consistent."""
from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QObject, QThread, pyqtSignal
from PyQt6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QMessageBox

from gui_helpers import (ModalAnswerer, click_button, default_answer, dialog_button, fill_text,
                         wait_no_modal)
from src.db import frames as frame_repo
from src.db import sources as source_repo
from src.gui.app import install_error_reporter
from src.gui.dialogs import UnexpectedErrorDialog
from src.gui.guard import drops_extra_args, positional_capacity, reports_errors

pytestmark = pytest.mark.gui


def test_slots_drop_the_signal_arguments_they_do_not_declare():
    class Owner:
        session = None

        @reports_errors
        def no_args(self):
            return "called"

        @reports_errors
        def one_arg(self, checked=False):
            return checked

    owner = Owner()
    assert owner.no_args(True) == "called"          # what `clicked(bool)` does to a slot
    assert owner.one_arg(True, "extra") is True
    assert drops_extra_args(lambda: 7)(True, 3) == 7
    assert positional_capacity(lambda a, b=1, *, c=2: 0) == 2
    assert positional_capacity(lambda *a: 0) is None


@pytest.fixture
def reporter(window):
    hook = install_error_reporter(window)
    yield hook
    hook.uninstall()


def _unexpected_dialog(window) -> UnexpectedErrorDialog | None:
    dialog = window.findChild(UnexpectedErrorDialog)
    return dialog if dialog is not None and dialog.isVisible() else None


def _answer_inputs_only(dialog):
    """Fill and accept the class name dialog; leave error dialogs for the test to inspect."""
    if isinstance(dialog, (UnexpectedErrorDialog, QMessageBox)):
        return "left open"
    return default_answer(dialog, "bike")


def test_an_unexpected_exception_in_a_slot_is_a_dialog_and_a_log(qtbot, window, reporter,
                                                                  monkeypatch):
    def broken_add_class(*args, **kwargs):
        raise RuntimeError("boom in add_class")
    monkeypatch.setattr(window.session, "add_class", broken_add_class)
    with ModalAnswerer(_answer_inputs_only):
        click_button(window.class_panel.findChild(QObject, "addClassButton"))
        qtbot.waitUntil(lambda: _unexpected_dialog(window) is not None)
    dialog = _unexpected_dialog(window)
    assert "RuntimeError: boom in add_class" in dialog.message.text()
    assert "broken_add_class" in dialog.details.toPlainText()       # the whole traceback
    log = window.session.project.root / "logs" / "errors.log"
    assert "RuntimeError: boom in add_class" in log.read_text()
    click_button(dialog.findChild(QObject, "copyDetailsButton"))
    assert "boom in add_class" in QApplication.clipboard().text()
    click_button(dialog.findChild(QObject, "closeErrorButton"))
    wait_no_modal(qtbot)

    monkeypatch.undo()                                  # the app still works afterwards
    with ModalAnswerer(_answer_inputs_only):
        click_button(window.class_panel.findChild(QObject, "addClassButton"))
        wait_no_modal(qtbot)
    assert "bike" in [c.name for c in window.session.classes()]


def test_exceptions_in_python_threads_and_qthread_workers_are_shown(qtbot, window, reporter):
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: _unexpected_dialog(window) is not None)
    assert "ZeroDivisionError" in _unexpected_dialog(window).message.text()

    class Worker(QObject):
        done = pyqtSignal()

        def run(self):
            try:
                raise KeyError("lost in a worker")
            finally:
                self.done.emit()

    worker, qthread = Worker(), QThread()
    worker.moveToThread(qthread)
    qthread.started.connect(worker.run)
    worker.done.connect(qthread.quit)
    with qtbot.waitSignal(qthread.finished):
        qthread.start()
    qtbot.waitUntil(lambda: "lost in a worker" in _unexpected_dialog(window).details.toPlainText())
    assert _unexpected_dialog(window).count == 2          # one dialog, both tracebacks
    click_button(_unexpected_dialog(window).findChild(QObject, "closeErrorButton"))
    assert window.isVisible()


def _error_box() -> QMessageBox | None:
    boxes = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]
    return boxes[0] if boxes else None


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]) if args else None)


def test_a_full_disk_during_capture_is_a_dialog_and_leaves_nothing(qtbot, window, monkeypatch):
    def half_then_full(self, data):
        with open(self, "wb") as out:
            out.write(data[: len(data) // 2])
        _disk_full(self)
    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    window.actions["capture"].trigger()
    qtbot.waitUntil(lambda: _error_box() is not None)
    assert "disk is full" in _error_box().text()
    monkeypatch.undo()
    conn = window.session.conn
    assert frame_repo.count_frames(conn) == 0
    frames_dir = window.session.project.frames_dir
    assert not frames_dir.exists() or [p for p in frames_dir.rglob("*") if p.is_file()] == []
    click_button(_error_box().button(QMessageBox.StandardButton.Ok))
    window.actions["capture"].trigger()                 # with space again, capture works
    assert frame_repo.count_frames(conn) == 1


def test_a_full_disk_during_an_image_folder_import_leaves_nothing(qtbot, window, tmp_path,
                                                                   monkeypatch):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 48, 3), 40 * i, np.uint8))
    monkeypatch.setattr(os, "link", _disk_full)
    monkeypatch.setattr(shutil, "copyfile", _disk_full)

    def choose_folder(dialog):
        if isinstance(dialog, QFileDialog):           # type the folder, as a user can
            fill_text(dialog.findChild(QObject, "fileNameEdit"), str(folder))
            click_button(dialog_button(dialog, QDialogButtonBox.ButtonRole.AcceptRole))
            return "chose folder"
        return "left open"
    before = len(source_repo.list_sources(window.session.conn))
    with ModalAnswerer(choose_folder):
        window.actions["import_folder"].trigger()
        qtbot.waitUntil(lambda: _error_box() is not None, timeout=10000)
    qtbot.waitUntil(lambda: not window._jobs)
    assert "disk is full" in _error_box().text()
    assert len(source_repo.list_sources(window.session.conn)) == before
    frames_dir = window.session.project.frames_dir
    leftovers = list(frames_dir.iterdir()) if frames_dir.exists() else []
    assert leftovers == []                      # no staging folder, no half-copied image


def test_the_status_bar_shows_the_active_model_of_each_task(qtbot, window):
    from src.db import model_versions as model_repo
    from src.db.records import ModelVersion
    label = window.status.active_models_label
    assert label.text() == "models: none"
    conn = window.session.conn
    det = model_repo.add_model_version(conn, ModelVersion("detect", "shapes", 2, "models/d.pt"))
    model_repo.set_active(conn, det.id)
    cls = model_repo.add_model_version(conn, ModelVersion("classify", "light", 1, "models/c.pt"))
    model_repo.set_active(conn, cls.id)
    window.open_project(window.session.project.root)      # as when the project is opened
    assert label.text() == f"models: classify: light v{cls.version}, detect: shapes v{det.version}"
