"""One training at a time, through clicks: a training started while another runs waits in the
queue and starts when the first ends; a queued one can be cancelled. A run that outlived its
window is followed again when the project is reopened, and Cancel stops it."""
from __future__ import annotations

import subprocess
import sys

import pytest
from PyQt6.QtCore import Qt

from src.db import runs
from src.db.project import Project
from src.gui.training.follower import FollowingMonitor
from src.gui.training.worker import REPO
from src.training.run_channel import EVENTS_FILE
from test_training_window import (TINY, TRAIN_S, _replace_text, _type_lines,  # noqa: F401
                                  tiny_project)

pytestmark = [pytest.mark.gui, pytest.mark.slow]
LONG = [*TINY, "epochs=200"]


@pytest.fixture
def main_window(qtbot, tiny_project):
    from src.gui.main_window import MainWindow
    win = MainWindow(tiny_project)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    _stop_all(qtbot, win)
    win.close()


def _stop_all(qtbot, win) -> None:
    """Cancel whatever still trains, so closing asks nothing and no thread outlives the test."""
    win.training.queue.clear()
    for monitor in win.training.monitors:
        if monitor.running:
            monitor.worker.cancel()
            if not monitor.worker.wait(60_000):
                monitor.worker.kill()
                monitor.worker.wait(30_000)
    qtbot.waitUntil(lambda: not any(m.running for m in win.training.monitors), timeout=60_000)


def _start_by_clicks(qtbot, win) -> None:
    """Training › Train model…, the crop classifier on 'tiny', long, Start."""
    win.actions["train"].trigger()
    dialog = win.training.train_dialog
    dialog.template.setFocus()
    qtbot.keyClicks(dialog.template, "Crop")
    _type_lines(qtbot, dialog.advanced, LONG)
    assert dialog.start_button.isEnabled(), dialog.problem.text()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_queued_training_starts_when_the_first_ends_and_can_be_cancelled(qtbot, main_window):
    win = main_window
    for _ in range(3):
        _start_by_clicks(qtbot, win)
    queue = win.training.queue
    first, second, third = queue.entries
    assert first.status == "running" and second.status == third.status == "queued"
    assert len(win.training.monitors) == 1                # only one child was started

    win.actions["training_queue"].trigger()
    dialog = win.training.queue_dialog
    table = dialog.session_table
    assert [table.item(r, 1).text() for r in range(3)] == ["running", "queued", "queued"]
    _click_row(qtbot, table, 2)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert third.status == "cancelled" and table.item(2, 1).text() == "cancelled"

    monitor = first.monitor
    qtbot.waitUntil(lambda: bool(monitor.progress.batch_loss), timeout=TRAIN_S)
    _click_row(qtbot, table, 0)                           # cancel the running one
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: monitor.status == "cancelled", timeout=TRAIN_S)
    qtbot.waitUntil(lambda: second.monitor is not None and second.status == "running",
                    timeout=10_000)
    qtbot.waitUntil(lambda: second.monitor.run_id is not None, timeout=TRAIN_S)
    assert second.monitor.run_id != monitor.run_id
    qtbot.mouseClick(second.monitor.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.status == "cancelled", timeout=TRAIN_S)
    assert third.monitor is None                          # the cancelled one never started
    with Project.open(win.session.project.root) as project:
        statuses = [r.status for r in runs.list_runs(project.conn)]
    assert statuses == ["cancelled", "cancelled"]
    dialog.refresh()
    assert dialog.runs_table.rowCount() == 2


def test_a_reopened_window_follows_a_background_run_and_cancels_it(qtbot, tiny_project):
    from src.gui.main_window import MainWindow
    child = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--project", str(tiny_project), "train",
         str(REPO / "configs" / "crop_classifier.yaml"), *LONG, "--dataset", "tiny"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    win = None
    try:
        with Project.open(tiny_project) as project:
            qtbot.waitUntil(lambda: _batches_logged(project), timeout=TRAIN_S)
        win = MainWindow(tiny_project)                    # the window reopens the project
        qtbot.addWidget(win)
        win.show()
        (monitor,) = win.training.queue.followed
        assert isinstance(monitor, FollowingMonitor) and monitor.status == "running"
        qtbot.waitUntil(lambda: bool(monitor.progress.batch_loss), timeout=30_000)
        assert monitor.cancel_button.isEnabled()
        qtbot.mouseClick(monitor.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: monitor.status == "cancelled", timeout=TRAIN_S)
        assert child.wait(60) == 130                      # the CLI's exit code for cancelled
        assert "cancelled" in monitor.state.text() and monitor.retry_button.isVisible()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if win is not None:
            win.close()


def _batches_logged(project) -> bool:
    running = [r for r in runs.list_runs(project.conn) if r.status == "running"]
    if not running:
        return False
    events = project.abspath(running[0].run_dir) / EVENTS_FILE
    return events.is_file() and "on_train_batch_end" in events.read_text(encoding="utf-8")
