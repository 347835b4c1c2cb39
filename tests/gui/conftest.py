"""GUI fixtures: leaked-thread guard, a tiny synthetic video project, the main window."""
from __future__ import annotations

import weakref

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QThread, QThreadPool

from src.data.capture import import_media
from src.db import classes as class_repo

from gui_helpers import VIDEO_FPS, VIDEO_FRAMES, VIDEO_H, VIDEO_W, open_main_window


@pytest.fixture(autouse=True)
def _no_leaked_qthreads(monkeypatch):
    """Fail a test that leaves a QThread running (they crash later tests), as napari does."""
    started: list[weakref.ref] = []
    original = QThread.start

    def recording_start(self, *args):
        started.append(weakref.ref(self))
        return original(self, *args)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    leaked = []
    for ref in started:
        thread = ref()
        try:
            running = thread is not None and thread.isRunning()
        except RuntimeError:        # the C++ object is gone, so is the thread
            running = False
        if running:
            leaked.append(thread.objectName() or repr(thread))
            thread.quit()
            thread.wait(2000)
    pool_busy = QThreadPool.globalInstance().activeThreadCount()
    if leaked or pool_busy:
        pytest.fail(f"test left threads running: {leaked} (global pool active: {pool_busy})")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """pytest-qt closes a test's widgets *before* its fixtures end. A window whose close
    asks a question (a training monitor still running after a failed assertion) would
    open a modal loop that nothing answers and pytest-timeout cannot interrupt: the suite
    hangs (seen in CI after a failure in the pause test). During teardown every modal
    dialog is rejected (its stay/cancel answer), so the fixtures that end the work run."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    timer = None
    if QApplication.instance() is not None:
        timer = QTimer()
        timer.setInterval(200)
        timer.timeout.connect(_reject_modal_dialog)
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.stop()


def _reject_modal_dialog() -> None:
    from PyQt6.QtWidgets import QApplication, QDialog

    modal = QApplication.activeModalWidget()
    if isinstance(modal, QDialog):
        modal.reject()


def write_video(path, frames: int = VIDEO_FRAMES, size=(VIDEO_W, VIDEO_H), fps=VIDEO_FPS):
    """A small MJPG video whose frame i has a distinct grey level and its number drawn."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), (i * 5) % 200 + 20, np.uint8)
        cv2.putText(image, str(i), (4, size[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    return path


@pytest.fixture
def tiny_video(tmp_path):
    return write_video(tmp_path / "tiny.avi")


@pytest.fixture
def gui_project(project, tiny_video):
    """A project with the tiny video registered and two classes, 'car' and 'person'."""
    source, _ = import_media(project, tiny_video)
    class_repo.add_class(project.conn, "car", "#e6194b")
    class_repo.add_class(project.conn, "person", "#3cb44b")
    return project, source


@pytest.fixture
def window(qtbot, gui_project):
    """The real main window on the tiny project, showing frame 0."""
    project, _ = gui_project
    win = open_main_window(qtbot, project.root, (900, 700))
    yield win
    win.close()


@pytest.fixture
def sam_window(qtbot, gui_project, monkeypatch):
    """The main window with an untrained SAM at 128 px allowed (the tests' opt-in)."""
    monkeypatch.setenv("LABELLOOP_SAM_UNTRAINED", "1")
    monkeypatch.setenv("LABELLOOP_SAM_IMGSZ", "128")
    project, _ = gui_project
    win = open_main_window(qtbot, project.root, (1000, 700))
    yield win
    win.close()
