"""Learn › Suggest frames and the N key, clicked in the real window with a real (tiny,
1-epoch) detector: the gallery shows the ranking, N goes to the best suggestion."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from src.db import frames as frames_repo
from src.training.control import RunControl
from src.training.events import EventBus
from tests.training.inference.conftest import register
from tests.training.yolo_fixtures import write_yolo_dataset, yolo_config

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory):
    """(cfg, outcome) of a yolov8n trained 1 epoch on 64 px rectangles."""
    from src.training.yolo_trainer import train_yolo
    root = tmp_path_factory.mktemp("gui-detector")
    cfg = yolo_config("detect", epochs=1)
    outcome = train_yolo(cfg, write_yolo_dataset(root / "det"), root / "run", EventBus(),
                         RunControl(), base_dir=root / "no-base")
    assert outcome.status == "completed"
    return cfg, outcome


def _gallery_rows(win) -> list[int]:
    model = win.gallery.model
    return [model.rows[r].frame.frame_index for r in range(model.rowCount())]


def test_suggest_frames_fills_the_gallery_and_n_goes_to_the_best(qtbot, window, gui_project,
                                                                 tiny_detector):
    project, source = gui_project
    register(project, *tiny_detector, "detect")
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
