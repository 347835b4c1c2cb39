"""Learn › Suggest frames and the N key, clicked in the real window with a real (tiny,
untrained) detector: the gallery shows the ranking, N goes to the best suggestion."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from src.db import frames as frames_repo
from tests.training.learning.learning_fixtures import make_base

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _gallery_rows(win) -> list[int]:
    model = win.gallery.model
    return [model.rows[r].frame.frame_index for r in range(model.rowCount())]


def test_suggest_frames_fills_the_gallery_and_n_goes_to_the_best(qtbot, window, gui_project):
    project, source = gui_project
    make_base(project)               # an untrained yolov8n as the active detector
    window.actions["suggest_frames"].trigger()
    qtbot.waitUntil(lambda: bool(window.suggester.ranking) and not window.suggester.running,
                    timeout=60000)
    ranked = [index for index, _ in window.suggester.ranking]
    assert window.gallery.filter_combo.currentData() == "suggested"
    assert _gallery_rows(window) == ranked                      # best first
    first = window.gallery.model.index(0).data(Qt.ItemDataRole.DisplayRole)
    assert "rank 1  score" in first
    captured = {f.frame_index for f in frames_repo.list_frames(project.conn, source.id)}
    assert set(ranked) <= captured                              # ready to label
    window.session.undo_stack.undo()                            # one step un-captures them
    assert not frames_repo.list_frames(project.conn, source.id)

    shown = window.player.target
    expected = ranked[0] if ranked[0] != shown else ranked[1]
    window.annotator.view.setFocus()
    qtbot.keyClick(window.annotator.view, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.player.index == expected and window.annotator.frame is not None)
    assert window.annotator.frame.frame_index == expected       # captured again on arrival
    following = ranked[ranked.index(expected) + 1]
    qtbot.keyClick(window.annotator.view, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.player.index == following)


def test_the_ranking_survives_reopening_the_project(qtbot, window, gui_project):
    project, source = gui_project
    make_base(project)
    window.actions["suggest_frames"].trigger()
    qtbot.waitUntil(lambda: bool(window.suggester.ranking) and not window.suggester.running,
                    timeout=60000)
    ranked = [index for index, _ in window.suggester.ranking]
    root = project.root
    window.close_project()
    assert window.suggester.ranking == []
    window.open_project(root, create=False)
    qtbot.waitUntil(lambda: window.player.image is not None)
    assert [index for index, _ in window.suggester.ranking] == ranked
    combo = window.gallery.filter_combo
    assert combo.findData("suggested") >= 0                  # offered ...
    assert combo.currentData() != "suggested"                # ... not forced on the user
    shown = window.player.target
    expected = ranked[0] if ranked[0] != shown else ranked[1]
    window.annotator.view.setFocus()
    qtbot.keyClick(window.annotator.view, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.player.index == expected and window.annotator.frame is not None)
