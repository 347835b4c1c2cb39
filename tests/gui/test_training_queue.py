"""Through clicks: a run that outlived its window is followed again when the project is
reopened, and Cancel stops it; one training at a time, so those asked for meanwhile wait in
the queue (a queued one can be cancelled) and the next starts when the running one ends."""
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
from test_training_window import (TINY, TRAIN_S, _type_lines,  # noqa: F401
                                  tiny_project)

pytestmark = [pytest.mark.gui, pytest.mark.slow]
LONG = [*TINY, "epochs=200"]


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
    _choose(qtbot, dialog.template, "Crop 'view' classifier")
    assert dialog.template_path.name == "crop_classifier.yaml"
    _type_lines(qtbot, dialog.advanced, LONG)
    assert dialog.start_button.isEnabled(), dialog.problem.text()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)


def _choose(qtbot, combo, prefix: str) -> None:
    """Arrow keys down to the entry (typing to search in a combo depends on the keystrokes'
    timing, which a loaded machine stretches)."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText().startswith(prefix):
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText().startswith(prefix), combo.currentText()


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_reopened_window_follows_a_background_run_then_the_queue_takes_over(qtbot,
                                                                          tiny_project):
    """One test for both (each child start costs seconds): the followed run occupies the
    machine, so the trainings asked for meanwhile queue; cancelling it starts the next."""
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
        win.resize(1000, 700)
        win.show()
        (followed,) = win.training.queue.followed
        assert isinstance(followed, FollowingMonitor) and followed.status == "running"
        qtbot.waitUntil(lambda: bool(followed.progress.batch_loss), timeout=30_000)
        assert followed.cancel_button.isEnabled()
        _queue_two_and_cancel_the_last(qtbot, win)

        second = win.training.queue.entries[0]
        qtbot.mouseClick(followed.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: followed.status == "cancelled", timeout=TRAIN_S)
        assert child.wait(60) == 130                      # the CLI's exit code for cancelled
        assert "cancelled" in followed.state.text() and followed.retry_button.isVisible()

        qtbot.waitUntil(lambda: second.monitor is not None, timeout=10_000)
        qtbot.waitUntil(lambda: second.monitor.run_id is not None or second.status != "running",
                        timeout=TRAIN_S)
        assert second.status == "running", second.monitor.state.text()
        assert second.monitor.run_id != followed.run_id
        dialog = win.training.queue_dialog
        _click_row(qtbot, dialog.session_table, 0)        # cancel it from the queue dialog
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: second.status == "cancelled", timeout=TRAIN_S)
        assert win.training.queue.entries[1].monitor is None   # cancelled: never started
        with Project.open(tiny_project) as project:
            assert [r.status for r in runs.list_runs(project.conn)] == ["cancelled"] * 2
        dialog.refresh()
        assert dialog.runs_table.rowCount() == 2
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if win is not None:
            _stop_all(qtbot, win)
            win.close()


def _queue_two_and_cancel_the_last(qtbot, win) -> None:
    """While a run trains, two trainings are asked for: both wait; the last is cancelled."""
    for _ in range(2):
        _start_by_clicks(qtbot, win)
    queue = win.training.queue
    assert [e.status for e in queue.entries] == ["queued", "queued"]
    assert len(win.training.monitors) == 1                # only the followed run's monitor
    win.actions["training_queue"].trigger()
    table = win.training.queue_dialog.session_table
    assert [table.item(r, 1).text() for r in range(3)] == ["queued", "queued", "running"]
    _click_row(qtbot, table, 1)
    qtbot.mouseClick(win.training.queue_dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert queue.entries[1].status == "cancelled" and table.item(1, 1).text() == "cancelled"


def _batches_logged(project) -> bool:
    running = [r for r in runs.list_runs(project.conn) if r.status == "running"]
    if not running:
        return False
    events = project.abspath(running[0].run_dir) / EVENTS_FILE
    return events.is_file() and "on_train_batch_end" in events.read_text(encoding="utf-8")
