"""Learn from my corrections, clicked in the real window on an image folder with a tiny
untrained detector as the active base: the toolbar toggle, corrected frames counted when the
user moves on, Update now in the background, Promote, Discard; a segment base picked in the
toolbar whose polygon proposals change after an update."""
from __future__ import annotations

import cv2
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QInputDialog

from gui_helpers import answer_modals, drag, open_main_window, view_point, wait_frame
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import learning as learning_repo
from src.db import model_versions as model_repo
from src.training.learning.settings import LearnSettings
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = [pytest.mark.gui, pytest.mark.slow]
FAST = LearnSettings(max_epochs=2, update_every=0, lr=1e-2, batch=4, budget_s=60)


@pytest.fixture
def loop_window(qtbot, project):
    source, frames = make_source(project, 6, annotate=False)
    for name in ("red", "blue"):
        classes_repo.ensure_class(project.conn, name)
    base = make_base(project)
    win = open_main_window(qtbot, project.root, (1200, 800))
    win.learning.settings = FAST
    yield win, project, base
    win.close()


def _button(win, name):
    return win.learning_toolbar.widgetForAction(win.actions[name])


def _correct_and_move_on(qtbot, win, index: int) -> None:
    """Draw a box on the frame shown, then go to the next frame (Right)."""
    view = win.annotator.view
    drag(view, view_point(view, 8, 8), view_point(view, 30, 30))
    qtbot.waitUntil(lambda: len(win.annotator.anns) >= 1)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    wait_frame(qtbot, win, index + 1)


def test_toggle_corrections_update_promote(qtbot, loop_window):
    win, project, base = loop_window
    label = win.learning.status_label
    toggle = _button(win, "learn_toggle")
    assert toggle.isEnabled() and not _button(win, "learn_update").isEnabled()
    assert (base.display_name or base.name) in win.actions["learn_toggle"].toolTip()
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert win.actions["learn_toggle"].isChecked() and win.learning.learner is not None
    assert f"base {base.display_name}" in label.text() and "0 corrected" in label.text()

    _correct_and_move_on(qtbot, win, 0)
    qtbot.waitUntil(lambda: "1 corrected" in label.text())
    _correct_and_move_on(qtbot, win, 1)
    qtbot.waitUntil(lambda: "2 corrected" in label.text())
    rows = learning_repo.corrected_frames(project.conn, win.learning.learner.record.id)
    assert len(rows) == 2 and all(r.added == 1 for r in rows)

    qtbot.mouseClick(_button(win, "learn_update"), Qt.MouseButton.LeftButton)
    assert win.learning.learner.updating or "updated" in label.text()   # never blocks
    qtbot.waitUntil(lambda: "updated" in label.text(), timeout=120000)
    assert "adapter in use" in label.text() and "in use" in label.toolTip()

    def name_it(dialog):
        assert isinstance(dialog, QInputDialog)
        dialog.setTextValue("tiny-learned")
        dialog.accept()
        return "named"
    answer_modals(qtbot, lambda: qtbot.mouseClick(_button(win, "learn_promote"),
                                                  Qt.MouseButton.LeftButton), name_it)
    promoted = [m for m in model_repo.list_model_versions(project.conn) if m.name == "tiny-learned"]
    assert len(promoted) == 1 and promoted[0].parent_id == base.id
    assert win.learning.learner is None and not win.actions["learn_toggle"].isChecked()
    assert label.text() == ""


def test_discard_clears_the_session(qtbot, loop_window):
    win, project, _ = loop_window
    qtbot.mouseClick(_button(win, "learn_toggle"), Qt.MouseButton.LeftButton)
    record_id = win.learning.learner.record.id
    _correct_and_move_on(qtbot, win, 0)
    qtbot.waitUntil(lambda: "1 corrected" in win.learning.status_label.text())
    answer_modals(qtbot, lambda: qtbot.mouseClick(_button(win, "learn_discard"),
                                                  Qt.MouseButton.LeftButton), _yes)
    assert learning_repo.get_session(project.conn, record_id).state == "discarded"
    assert win.learning.learner is None and win.learning.status_label.text() == ""


def _yes(dialog):
    from gui_helpers import default_answer
    return default_answer(dialog)


def test_toggle_says_why_without_an_active_detector(window):
    action = window.actions["learn_toggle"]
    assert not action.isEnabled() and "no active detector" in action.toolTip()
    assert not window.learning.base_combo.isVisible()       # no empty base picker either


def _reject_draw_and_move_on(qtbot, win, project, index: int) -> None:
    """Reject the frame's proposals (Shift+X), draw a box, go to the next frame."""
    frame_id = win.annotator.frame.id
    view = win.annotator.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not annotations_repo.list_annotations(project.conn, frame_id,
                                                                  status="proposed"))
    drag(view, view_point(view, 8, 8), view_point(view, 30, 30))
    qtbot.waitUntil(lambda: bool(annotations_repo.list_annotations(project.conn, frame_id,
                                                                   status="accepted")))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    wait_frame(qtbot, win, index + 1)


def test_segment_base_update_changes_the_polygon_proposals(qtbot, project):
    """A tiny segment base beside the detector: picked in the toolbar, two boxes drawn on two
    frames, Update now; the polygons proposed on a new frame then come from base + adapter."""
    from src.training.inference.loading import predictor_for
    from tests.training.learning.learning_fixtures import make_seg_base

    source, frames = make_source(project, 6, annotate=False)
    for name in ("red", "blue"):
        classes_repo.ensure_class(project.conn, name)
    make_base(project)
    seg = make_seg_base(project)
    win = open_main_window(qtbot, project.root, (1200, 800))
    # near-zero threshold: the untrained base proposes a few polygons, not none; the head
    # trains in full so the adapter visibly moves them
    win.learning.settings = LearnSettings(max_epochs=2, update_every=0, lr=1e-2, batch=4,
                                          budget_s=60, conf=0.001, train_head=True)
    combo = win.learning.base_combo
    assert combo.isVisible() and combo.isEnabled() and combo.count() == 2
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)             # the detector is first: pick the segmenter
    assert combo.currentData() == seg.id and "(segment)" in combo.currentText()
    assert seg.display_name in win.actions["learn_toggle"].toolTip()

    qtbot.mouseClick(_button(win, "learn_toggle"), Qt.MouseButton.LeftButton)
    label = win.learning.status_label
    assert win.learning.learner.base.id == seg.id and f"base {seg.display_name}" in label.text()
    assert not combo.isEnabled()                        # another base is another session
    qtbot.waitUntil(lambda: bool(annotations_repo.list_annotations(   # proposed when toggled
        project.conn, frames[0].id, status="proposed")), timeout=30000)   # on, in a worker
    first = annotations_repo.list_annotations(project.conn, frames[0].id, status="proposed")
    assert all(a.kind == "polygon" for a in first)
    qtbot.waitUntil(lambda: not win.learning.proposals.running)
    for index in (0, 1):
        _reject_draw_and_move_on(qtbot, win, project, index)
    qtbot.waitUntil(lambda: "2 corrected" in label.text())

    qtbot.mouseClick(_button(win, "learn_update"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "updated" in label.text(), timeout=120000)
    assert "adapter in use" in label.text() and "mask proposal score" in label.toolTip()
    view = win.annotator.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)              # frame 3: never shown, proposed now
    wait_frame(qtbot, win, 3)
    frame = win.annotator.frame
    qtbot.waitUntil(lambda: frame is not None and bool(annotations_repo.list_annotations(
        project.conn, frame.id, status="proposed")))
    shown = annotations_repo.list_annotations(project.conn, frame.id, status="proposed")
    assert all(a.kind == "polygon" for a in shown)
    image = cv2.imread(str(project.abspath(frame.image_path)))
    alone = predictor_for(project, seg, conf=0.001, iou=0.7, imgsz=64, device="cpu")
    base_polygons = [d.polygon for d in alone.predict_one(image).detections]
    assert sorted(map(str, (a.geometry for a in shown))) != sorted(map(str, base_polygons))
    win.close()


def test_reopened_project_brings_its_open_session_back_on(qtbot, project):
    """A session left open (two corrected frames, no update) comes back when the project is
    opened again: the toggle is on, the status says what it holds."""
    from src.gui.main_window import MainWindow
    from src.training.learning.session import LearningSession

    source, frames = make_source(project, 4)
    base = make_base(project)
    session = LearningSession.open(project, source.id, base.id)
    for frame in frames[:2]:
        session.frame_corrected(frame.id, {"added": 2})
    session.close()
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.actions["learn_toggle"].isChecked(), timeout=20000)
    assert win.learning.learner.record.id == session.record.id
    label = win.learning.status_label.text()
    assert f"base {base.display_name}" in label and "2 corrected" in label
    assert "base only" in label and _button(win, "learn_update").isEnabled()
    qtbot.mouseClick(_button(win, "learn_toggle"), Qt.MouseButton.LeftButton)   # off: stays off
    assert win.learning.learner is None
    view = win.annotator.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    wait_frame(qtbot, win, 1)
    assert not win.actions["learn_toggle"].isChecked()
    win.close()
