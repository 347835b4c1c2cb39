"""Learn from my corrections proposes in a worker thread, clicked in the real window: the
model runs off the GUI thread while the event loop keeps going, the proposals show when the
job ends, a box drawn while it ran is not buried under automatic proposals, frames passed
meanwhile are skipped (the latest wins), and closing the window mid-job ends it cleanly.

The session's predictions are slowed (or held) by wrapping `Predictor.predict_one`; the real
prediction of an untrained tiny detector still runs (at a near-zero threshold it proposes a
few boxes)."""
from __future__ import annotations

import threading
import time

import pytest
from PyQt6.QtCore import Qt, QThread, QTimer

from gui_helpers import drag, open_main_window, view_point, wait_frame
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.training.inference.predictor import Predictor
from src.training.learning.settings import LearnSettings
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = [pytest.mark.gui]


class HeldPredict:
    """Wraps Predictor.predict_one: records the calling thread and when it ran, and waits
    for `release` (set at once unless `hold`) plus `delay_s` before predicting."""

    def __init__(self, monkeypatch, *, hold: bool = False, delay_s: float = 0.0) -> None:
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.delay_s = delay_s
        self.calls: list[tuple[int, float, float]] = []      # (thread id, start, end)
        original = Predictor.predict_one

        def predict_one(predictor, image):
            start = time.monotonic()
            self.release.wait(30)
            time.sleep(self.delay_s)
            try:
                return original(predictor, image)
            finally:
                self.calls.append((threading.get_ident(), start, time.monotonic()))

        monkeypatch.setattr(Predictor, "predict_one", predict_one)


@pytest.fixture
def loop_window(qtbot, project):
    _, frames = make_source(project, 4, annotate=False)
    for name in ("red", "blue"):
        classes_repo.ensure_class(project.conn, name)
    make_base(project)
    win = open_main_window(qtbot, project.root, (1100, 750))
    # near-zero threshold: the untrained base proposes a few boxes, not none
    win.learning.settings = LearnSettings(update_every=0, budget_s=30, conf=0.001)
    yield win, project, frames
    win.close()


def _toggle_on(qtbot, win) -> None:
    toggle = win.learning_toolbar.widgetForAction(win.actions["learn_toggle"])
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert win.learning.learner is not None


def _proposed(project, frame_id):
    return annotations_repo.list_annotations(project.conn, frame_id, status="proposed")


def test_proposals_run_off_the_gui_thread_and_show_when_done(qtbot, loop_window, monkeypatch):
    win, project, frames = loop_window
    slow = HeldPredict(monkeypatch, delay_s=1.0)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    win.statusBar().clearMessage()
    _toggle_on(qtbot, win)               # frame 0 has no shape: proposed at once, in a worker
    assert win.learning.proposals.running and "proposing…" in win.learning.status_label.text()
    assert not win.annotator.anns        # nothing yet: the click did not wait for the model
    qtbot.waitUntil(lambda: bool(win.annotator.anns), timeout=30000)
    timer.stop()
    assert "proposal(s) from" in win.statusBar().currentMessage()
    assert "proposing…" not in win.learning.status_label.text()
    shown = {a.id for a in win.annotator.anns}
    assert shown == {a.id for a in _proposed(project, frames[0].id)} and shown
    (thread_id, start, end), = slow.calls
    assert thread_id != threading.get_ident()
    # the event loop kept running while the model predicted (1 s held in predict_one)
    assert sum(start < t < end for t in ticks) >= 5


def test_a_box_drawn_while_proposing_stays_alone_and_passed_frames_are_skipped(
        qtbot, loop_window, monkeypatch):
    win, project, frames = loop_window
    held = HeldPredict(monkeypatch, hold=True)
    _toggle_on(qtbot, win)
    assert win.learning.proposals.running
    view = win.annotator.view
    drag(view, view_point(view, 8, 8), view_point(view, 30, 30))      # frame 0, mid-job
    qtbot.waitUntil(lambda: len(win.annotator.anns) == 1)
    for index in (1, 2):                 # frame 1 is only passed through
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Right)
        wait_frame(qtbot, win, index)
    assert win.learning.proposals.running          # still on frame 0's job
    held.release.set()
    qtbot.waitUntil(lambda: bool(_proposed(project, frames[2].id)), timeout=30000)
    qtbot.waitUntil(lambda: not win.learning.proposals.running)
    assert len(held.calls) == 2                    # frame 0's job, then frame 2's; not 1's
    assert not _proposed(project, frames[0].id)    # the user's box is the frame's only shape
    accepted = annotations_repo.list_annotations(project.conn, frames[0].id, status="accepted")
    assert len(accepted) == 1 and accepted[0].source == "manual"
    assert not annotations_repo.list_annotations(project.conn, frames[1].id)
    assert {a.id for a in win.annotator.anns} == {a.id for a in _proposed(project, frames[2].id)}
    # asked for by name (Learn › Propose on this frame), a frame with a shape gets them too
    for index in (1, 0):
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Left)
        wait_frame(qtbot, win, index)
    win.actions["learn_propose"].trigger()
    qtbot.waitUntil(lambda: bool(_proposed(project, frames[0].id)), timeout=30000)
    qtbot.waitUntil(lambda: len(win.annotator.anns) == 1 + len(_proposed(project, frames[0].id)))


def test_closing_the_window_mid_job_ends_it_without_storing(qtbot, loop_window, monkeypatch):
    win, project, frames = loop_window
    slow = HeldPredict(monkeypatch, delay_s=0.8)
    _toggle_on(qtbot, win)
    qtbot.waitUntil(lambda: win.learning.proposals.running)
    thread = win.learning.proposals.findChild(QThread, "learningProposalThread")
    win.close()                          # the window's close button: shutdown joins the job
    assert not thread.isRunning() and not win.learning.proposals.running
    assert win.learning.learner is None and win.session is None
    assert len(slow.calls) <= 1          # cancelled before predicting, or joined after it
    assert not _proposed(project, frames[0].id)    # a closed project gets nothing stored
    qtbot.wait(100)                      # the job's late signals are dropped, not shown
    assert "proposal(s) from" not in win.statusBar().currentMessage()


def test_a_failing_proposal_is_an_error_message_and_stores_nothing(qtbot, loop_window,
                                                                   monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    from src.errors import ModelError
    win, project, frames = loop_window

    def broken(predictor, image):
        raise ModelError("the model file is damaged", hint="train it again")

    monkeypatch.setattr(Predictor, "predict_one", broken)
    _toggle_on(qtbot, win)

    def error_box():
        boxes = [b for b in win.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
        return boxes[0] if boxes else None
    qtbot.waitUntil(lambda: error_box() is not None, timeout=30000)
    box = error_box()
    assert "the model file is damaged" in box.text() and "train it again" in box.informativeText()
    qtbot.mouseClick(box.buttons()[0], Qt.MouseButton.LeftButton)     # OK
    qtbot.waitUntil(lambda: error_box() is None)
    assert not win.learning.proposals.running and win.learning.learner is not None
    assert not _proposed(project, frames[0].id)
    assert "proposing…" not in win.learning.status_label.text()
