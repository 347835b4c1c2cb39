"""The SAM panel through clicks and keys (pytest-qt), on SAM 2 tiny built without weights
(explicit opt-in: LABELLOOP_SAM_UNTRAINED=1, 128 px): Load model embeds each frame the user
opens without the Segment tool; an object's adapter is registered as a model version through
the Register button, listed in Training › Models… with its base, and tracked with."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest

from gui_helpers import ModalAnswerer, default_answer, drag, view_point
from src.training.models.manager import SAM_ADAPTER_TASK
from tests.training.sam.test_sam_adapter_versions import _save_adapter

pytestmark = pytest.mark.gui


def _load_from_panel(qtbot, sam) -> None:
    assert sam.panel.load_button.isEnabled()
    qtbot.mouseClick(sam.panel.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "ready" in sam.panel.status_label.text(), timeout=60000)
    assert not sam.panel.load_button.isEnabled()


def test_a_loaded_model_embeds_each_opened_frame_without_the_segment_tool(qtbot, sam_window):
    win, sam, view = sam_window, sam_window.sam, sam_window.annotator.view
    source_id = win.player.source.id
    _load_from_panel(qtbot, sam)
    qtbot.waitUntil(lambda: (source_id, 0) in sam.cache, timeout=30000)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Right)             # the user steps to the next frame
    qtbot.waitUntil(lambda: win.annotator.position == (source_id, 1))
    qtbot.waitUntil(lambda: (source_id, 1) in sam.cache, timeout=30000)
    # the worker caches the embedding, then its `done` signal reaches the GUI thread
    qtbot.waitUntil(lambda: "frame 1: embedding ready" in sam.panel.embed_label.text(),
                    timeout=10000)
    assert not sam.segment_action.isChecked() and not sam.gestures.active
    # several steps in a row: the frame finally shown is embedded (queued ones may be dropped)
    for _ in range(3):
        QTest.keyClick(view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: win.annotator.position == (source_id, 4))
    qtbot.waitUntil(lambda: (source_id, 4) in sam.cache, timeout=30000)
    assert not sam.segment_action.isChecked()


@pytest.mark.slow
def test_register_button_adds_a_version_listed_in_models_with_its_base(qtbot, sam_window):
    win, sam, view = sam_window, sam_window.sam, sam_window.annotator.view
    _load_from_panel(qtbot, sam)
    assert sam.panel.adapter_button.isEnabled()
    qtbot.mouseClick(win.toolbar.findChild(object, "toolbar_mode_segment"),
                     Qt.MouseButton.LeftButton)
    drag(view, view_point(view, 20, 15), view_point(view, 60, 45))
    qtbot.waitUntil(lambda: sam.overlay.shown_mask is not None, timeout=30000)
    QTest.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(view.selected_ids()) == 1)
    (object_id,) = view.selected_ids()
    source = win.player.source
    _save_adapter(win.session.project, sam.engine, source.id, object_id)
    sam.panel.track_frames.setValue(1)
    qtbot.mouseClick(sam.panel.track_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "tracked 1 frame(s)" in sam.panel.status_label.text(),
                    timeout=60000)
    assert sam.panel.register_button.isVisible() and sam.panel.register_button.isEnabled()
    # while a track is open, opening a frame also embeds the next ones ahead
    assert (source.id, 3) not in sam.cache
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: (source.id, 3) in sam.cache, timeout=30000)
    with ModalAnswerer(lambda d: default_answer(d, "square adapter")) as answerer:
        qtbot.mouseClick(sam.panel.register_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "registered as model version" in sam.panel.learn_label.text(),
                        timeout=30000)
    assert not answerer.errors and any("QInputDialog" in line for line in answerer.log)
    # Training › Models… lists it with its kind and its base
    win.actions["models"].trigger()
    dialog = win.training.models_dialog
    qtbot.waitUntil(lambda: dialog.isVisible())
    rows = {dialog.table.item(r, 1).text(): r for r in range(dialog.table.rowCount())}
    rows_ids = [v.id for v in dialog.versions]
    row = rows["square adapter"]
    assert dialog.table.item(row, 2).text() == SAM_ADAPTER_TASK
    assert dialog.table.item(row, 6).text() == "SAM base sam2_t (untrained)"
    assert "learned from" in dialog.table.item(row, 4).text()
    cell = dialog.table.visualItemRect(dialog.table.item(row, 1)).center()
    qtbot.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert dialog.selected_ids() == [rows_ids[row]]
    assert dialog.buttons["setActiveButton"].isEnabled()
    assert not dialog.buttons["exportOnnxButton"].isEnabled()
    qtbot.mouseClick(dialog.buttons["setActiveButton"], Qt.MouseButton.LeftButton)
    assert dialog.table.item(row, 0).text() == "● active"
    qtbot.mouseClick(dialog.findChild(object, "closeModelsButton"), Qt.MouseButton.LeftButton)
    # the registered version is loaded back as the adapter the track uses
    with ModalAnswerer() as answerer:
        qtbot.mouseClick(sam.panel.adapter_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "tracking with adapter version" in
                        sam.panel.adapter_label.text(), timeout=30000)
    assert not answerer.errors and "square adapter" in sam.panel.adapter_label.text()
    assert sam.track.session.tracker.decoder is sam.adapter_version[1]
