"""Assisted labeling in the annotator, driven by keys, clicks and the Assist dialog: the
active detector pre-labels frames in the background (dashed proposals with confidences),
the toolbar's slider hides proposals below it, accept/reject all act on what is shown, and
Propagate follows the selected box through the next frames (with Cancel)."""
from __future__ import annotations

import time

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication, QDoubleSpinBox, QMessageBox, QSpinBox

from gui_helpers import (ModalAnswerer, _ACCEPT, click, click_button, dialog_button,
                         fill_text, open_main_window, view_point, wait_frame, wait_no_modal)
from src.cli import main as cli_main
from src.data.capture import import_media
from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import frames as frame_repo
from src.db import proposals as proposal_repo
from src.db.records import Annotation
from src.training.inference import loading
from tests.training.inference.colour_detector import ColourDetector
from tests.training.inference.conftest import (register, square_positions,  # noqa: F401
                                               squares_video, trained_detector)

pytestmark = pytest.mark.gui


@pytest.fixture
def squares_project(project, squares_video, trained_detector):  # noqa: F811
    """The squares video, classes red and blue, and the 1-epoch detector registered and
    active (loaded and verified for real)."""
    source, _ = import_media(project, squares_video)
    for name, colour in (("red", "#e6194b"), ("blue", "#4363d8")):
        class_repo.add_class(project.conn, name, colour)
    version = register(project, *trained_detector, "detect")
    return project, source, version


def _open(qtbot, project):
    win = open_main_window(qtbot, project.root, (1000, 700))
    return win


def _answer_assist(count: int | None = None, conf: float | None = None):
    """Answer the Assist dialog by typing into its spin boxes, then OK."""
    def answer(dialog):
        if count is not None:
            fill_text(dialog.findChild(QSpinBox, "assistCountSpin").lineEdit(), str(count))
        if conf is not None:
            fill_text(dialog.findChild(QDoubleSpinBox, "assistConfSpin").lineEdit(),
                      f"{conf:.3f}")
        click_button(dialog_button(dialog, *_ACCEPT))
        return "assist dialog"
    return answer


def _proposals_by_frame(project, source_id) -> dict[int, list[Annotation]]:
    ids = proposal_repo.find_proposals(project.conn, source_id=source_id)
    index = {f.id: f.frame_index for f in frame_repo.list_frames(project.conn, source_id)}
    out: dict[int, list[Annotation]] = {}
    for ann in ann_repo.get_annotations(project.conn, ids):
        out.setdefault(index[ann.frame_id], []).append(ann)
    return out


def _focus_view(qtbot, win) -> None:
    """After a dialog closed: the window active again and the canvas focused, as a user's
    click would leave them (shortcuts only reach an active window)."""
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    win.annotator.view.setFocus()


def _dashed(view) -> list:
    return [i for i in view.items_by_id.values()
            if i.isVisible() and i.pen().style() == Qt.PenStyle.DashLine]


@pytest.mark.slow       # trains the 1-epoch detector once per session
def test_prelabel_then_accept_and_reject_all_through_keys(qtbot, squares_project):
    project, source, version = squares_project
    win = _open(qtbot, project)
    view = win.annotator.view
    with ModalAnswerer(_answer_assist(count=2, conf=0.001)):
        win.actions["prelabel_next"].trigger()          # Shift+L: frames 1 and 2
        wait_no_modal(qtbot)
    qtbot.waitUntil(lambda: not win.assist.running, timeout=60000)
    stored = _proposals_by_frame(project, source.id)
    assert sorted(stored) == [1, 2], "a 1-epoch detector at conf 0.001 finds boxes"
    assert {a.source for a in stored[1]} == {f"model:{version.id}"}

    _focus_view(qtbot, win)
    qtbot.keyClick(view, Qt.Key.Key_L)                 # this frame (0), same threshold
    qtbot.waitUntil(lambda: not win.assist.running, timeout=60000)
    assert 0 in _proposals_by_frame(project, source.id)
    qtbot.waitUntil(lambda: len(_dashed(view)) == len(_proposals_by_frame(project,
                                                                          source.id)[0]))
    item = _dashed(view)[0]
    assert item.label.text.endswith(f"{item.ann.confidence:.2f}")     # class + confidence

    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)   # accept all
    anns = ann_repo.list_annotations(project.conn, win.annotator.frame.id)
    assert anns and {a.status for a in anns} == {"accepted"}
    assert _dashed(view) == []

    win.actions["forward1"].trigger()
    wait_frame(qtbot, win, 1)
    qtbot.waitUntil(lambda: len(_dashed(view)) == len(stored[1]))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)   # reject all
    assert ann_repo.list_annotations(project.conn, win.annotator.frame.id) == []
    assert 1 not in _proposals_by_frame(project, source.id)
    win.close()


def test_the_slider_hides_low_confidence_proposals_and_accept_all_takes_the_shown(
        qtbot, gui_project):
    project, source = gui_project
    assert cli_main(["--project", str(project.root), "frames", "capture", str(source.id),
                     "--at", "0"]) == 0
    frame = frame_repo.get_frame_at(project.conn, source.id, 0)
    car = class_repo.get_class_by_name(project.conn, "car")
    low, high = (ann_repo.add_annotation(project.conn, Annotation(
        frame.id, car.id, "box", box, "model:7", conf, "proposed"))
        for box, conf in (([5.0, 5.0, 25.0, 25.0], 0.3), ([50.0, 20.0, 80.0, 50.0], 0.8)))
    win = _open(qtbot, project)
    view, slider = win.annotator.view, win.confidence.slider
    qtbot.waitUntil(lambda: len(_dashed(view)) == 2)
    for _ in range(5):                                  # PageUp x5: 0.50
        qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    assert win.confidence.value_label.text() == "0.50"
    assert not view.items_by_id[low.id].isVisible() and view.items_by_id[high.id].isVisible()
    win.actions["mode_edit"].trigger()
    click(view, view_point(view, 15, 15))               # a hidden proposal cannot be picked
    assert view.selected_ids() == []
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    status = {a.id: a.status for a in ann_repo.list_annotations(project.conn, frame.id)}
    assert status == {low.id: "proposed", high.id: "accepted"}
    qtbot.keyClick(slider, Qt.Key.Key_Home)             # back to 0: shown again
    assert view.items_by_id[low.id].isVisible()
    win.close()


def _error_texts() -> list[str]:
    return [f"{w.text()} {w.informativeText()}" for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]


def test_without_an_active_detector_the_keys_say_what_to_do(qtbot, window):
    view = window.annotator.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_L)
    qtbot.waitUntil(lambda: bool(_error_texts()))
    (text,) = _error_texts()
    assert "no active detect / segment model" in text and "train one" in text
    click_button(next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)
                      and w.isVisible()).buttons()[0])
    qtbot.keyClick(view, Qt.Key.Key_P, Qt.KeyboardModifier.ShiftModifier)   # nothing selected
    qtbot.waitUntil(lambda: bool(_error_texts()))
    assert "no box is selected" in _error_texts()[0]
    assert not window.assist.running


class _SlowColourDetector(ColourDetector):
    delay_s = 0.0

    def predict(self, images):
        time.sleep(self.delay_s)
        return super().predict(images)


@pytest.mark.slow
def test_propagate_follows_the_selected_box_and_cancel_stops_it(qtbot, squares_project,
                                                                monkeypatch):
    project, source, version = squares_project
    real = loading.predictor_for                         # verified for real, then by colour
    monkeypatch.setattr(loading, "predictor_for",
                        lambda p, mv, **o: (real(p, mv, **o), _SlowColourDetector(**o))[1])
    assert cli_main(["--project", str(project.root), "frames", "capture", str(source.id),
                     "--at", "0"]) == 0
    frame = frame_repo.get_frame_at(project.conn, source.id, 0)
    red = class_repo.get_class_by_name(project.conn, "red")
    box = [float(v) for v in square_positions(0)["red"]]
    ann_repo.add_annotation(project.conn, Annotation(frame.id, red.id, "box", box))
    win = _open(qtbot, project)
    view = win.annotator.view
    win.actions["mode_edit"].trigger()
    qtbot.waitUntil(lambda: len(view.items_by_id) == 1)
    click(view, view_point(view, 12, 16))               # select the red box
    assert len(view.selected_ids()) == 1
    with ModalAnswerer(_answer_assist(count=4)):
        _focus_view(qtbot, win)
        qtbot.keyClick(view, Qt.Key.Key_P, Qt.KeyboardModifier.ShiftModifier)
        wait_no_modal(qtbot)
    qtbot.waitUntil(lambda: not win.assist.running, timeout=60000)
    stored = _proposals_by_frame(project, source.id)
    assert sorted(stored) == [1, 2, 3, 4]
    assert all([a.class_id for a in anns] == [red.id] for anns in stored.values())

    monkeypatch.setattr(_SlowColourDetector, "delay_s", 0.5)   # 4 frames a batch: ~2.5 s
    with ModalAnswerer(_answer_assist(count=20)):
        win.actions["propagate"].trigger()
        wait_no_modal(qtbot)
    bar = win.assist.progress.bar
    qtbot.waitUntil(lambda: win.assist.running and bar.value() >= 4, timeout=30000)
    cancel = win.assist.progress.cancel_button
    assert cancel.isVisible()
    click_button(cancel)
    qtbot.waitUntil(lambda: not win.assist.running, timeout=30000)
    assert win.status.currentMessage().startswith("Cancelled")
    assert 4 <= max(_proposals_by_frame(project, source.id)) < 20
    win.close()
