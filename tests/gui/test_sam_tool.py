"""The Segment Anything tools driven by real clicks and keys (pytest-qt), on SAM 2 tiny
built without weights (explicit opt-in: LABELLOOP_SAM_UNTRAINED=1, 128 px input)."""
from __future__ import annotations

import os
import sys
import threading

import pytest
import torch
from PyQt6.QtCore import QObject, Qt
from PyQt6.QtTest import QTest

from gui_helpers import VIDEO_H, VIDEO_W, click, drag, view_point
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.gui.sam.worker import start_worker
from src.training.learning.early_stop import StopRules
from src.training.sam.lit_lora import LitLoraSettings
from src.training.sam.polygon import mask_to_polygon

pytestmark = pytest.mark.gui


def _choose_segment(qtbot, win) -> None:
    qtbot.mouseClick(win.toolbar.findChild(object, "toolbar_mode_segment"),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "ready" in win.sam.panel.status_label.text(), timeout=60000)


def test_without_weights_the_tool_is_disabled_and_says_what_to_do(window):
    sam = window.sam
    assert not sam.segment_action.isEnabled() and not sam.track_action.isEnabled()
    expected = str(window.session.project.base_weights_dir)
    for text in (sam.segment_action.toolTip(), sam.panel.status_label.text()):
        assert "sam2_t.pt" in text and expected in text
    assert not sam.panel.track_button.isEnabled()


@pytest.mark.slow
def test_clicks_give_a_mask_tab_cycles_enter_keeps_a_polygon(qtbot, sam_window):
    win, sam, view = sam_window, sam_window.sam, sam_window.annotator.view
    _choose_segment(qtbot, win)
    click(view, view_point(view, 30, 30))
    qtbot.waitUntil(lambda: sam.overlay.shown_mask is not None, timeout=30000)
    assert "candidate 1/3" in sam.panel.candidate_label.text()
    assert sam.overlay.shown_mask.shape == (VIDEO_H, VIDEO_W)
    QTest.keyClick(view, Qt.Key.Key_Tab)
    assert "candidate 2/3" in sam.panel.candidate_label.text()
    click(view, view_point(view, 80, 50), Qt.MouseButton.RightButton)
    assert [p.positive for p in sam.prompt.points] == [True, False]
    # zoomed in and panned, a click still lands on the image pixel under the mouse
    win.actions["zoom_in"].trigger()
    win.actions["zoom_in"].trigger()
    target = view_point(view, 40, 20)
    click(view, target)
    last = sam.prompt.points[-1]
    assert abs(last.x - 40) <= 1 and abs(last.y - 20) <= 1
    shown = sam.candidates[sam.cand_index].mask
    expected = mask_to_polygon(shown, sam.panel.tolerance.value())
    QTest.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: any(a.kind == "polygon" for a in win.annotator.anns))
    (ann,) = [a for a in win.annotator.anns if a.kind == "polygon"]
    assert ann.geometry == expected and ann.status == "accepted"
    assert all(0 <= x < VIDEO_W and 0 <= y < VIDEO_H for x, y in ann.geometry)
    assert ann.class_id == win.session.current_class_id
    assert sam.overlay.shown_mask is None and sam.prompt.empty
    # a drag is a box prompt; Esc discards it
    drag(view, view_point(view, 10, 10), view_point(view, 50, 40))
    assert sam.prompt.box is not None and sam.overlay.shown_mask is not None
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert sam.prompt.empty and sam.overlay.shown_mask is None


@pytest.mark.slow
def test_track_correct_and_learn_through_the_panel(qtbot, sam_window):
    win, sam, view = sam_window, sam_window.sam, sam_window.annotator.view
    _choose_segment(qtbot, win)
    # an untrained SAM 2 calls every object absent: make it say 'present' (tests only)
    with torch.no_grad():
        sam.engine.model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(20.0)
    sam.engine.model.mask_threshold = -0.15
    sam.lit_settings = LitLoraSettings(rules=StopRules(patience=2, max_epochs=4))
    drag(view, view_point(view, 20, 15), view_point(view, 60, 45))
    qtbot.waitUntil(lambda: sam.overlay.shown_mask is not None, timeout=30000)
    QTest.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(view.selected_ids()) == 1)
    sam.panel.track_frames.setValue(3)
    qtbot.mouseClick(sam.panel.track_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "tracked 3 frame(s)" in sam.panel.status_label.text(), timeout=60000)
    conn = win.session.conn
    source_id = win.player.source.id
    proposals = [a for i in (1, 2, 3)
                 for a in annotations_repo.list_annotations(
                     conn, frames_repo.get_frame_at(conn, source_id, i).id, status="proposed")]
    assert len(proposals) == 3 and all(0 <= a.confidence <= 1 for a in proposals)
    assert sam.panel.learn_box.isVisible()
    qtbot.mouseClick(sam.panel.learn_check, Qt.MouseButton.LeftButton)
    win.actions["forward1"].trigger()
    win.actions["forward1"].trigger()
    qtbot.waitUntil(lambda: win.annotator.position[1] == 2)
    click(view, view_point(view, 40, 30))          # a correction on a tracked frame
    qtbot.waitUntil(lambda: "learning" in sam.panel.learn_label.text()
                    or "update" in sam.panel.learn_label.text(), timeout=60000)
    assert sam.track.lit.samples.ids() == ["frame-2"]
    qtbot.waitUntil(lambda: "adapter ready" in sam.panel.learn_label.text(), timeout=120000)
    qtbot.waitUntil(lambda: sam.panel.use_adapted.isEnabled(), timeout=30000)
    assert "adapted (blue)" in sam.panel.compare_label.text()
    qtbot.mouseClick(sam.panel.use_adapted, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "tracked" in sam.panel.status_label.text()
                    and sam.worker.busy_tag is None, timeout=60000)
    assert sam.track.session.tracker.decoder is sam.track.lit.decoder
    qtbot.mouseClick(sam.panel.discard_button, Qt.MouseButton.LeftButton)
    assert "discarded" in sam.panel.learn_label.text() and not sam.track.lit.adapters.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_sam_jobs_run_below_the_gui_threads_priority(qtbot):
    """Embedding and tracking run in the SAM worker thread at a lower priority, so a click
    decoded on the GUI thread gets the cores first (benchmarks/sam.py measures it)."""
    def nice(_worker=None) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    parent = QObject()
    thread, worker = start_worker(parent)
    results = []
    worker.done.connect(lambda _tag, result: results.append(result))
    worker.submit("nice", nice)
    qtbot.waitUntil(lambda: bool(results), timeout=10000)
    worker.stop()                   # its `finished` quits the thread through this loop
    qtbot.waitUntil(thread.isFinished, timeout=10000)
    assert results == [max(nice(), 10)]
