"""A frame that carries only frame tags ('night') has no shapes yet: with Learn from my
corrections on, the session proposes on it when it is shown (the demo's night half found
this: every frame had its tag, so none got proposals)."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from gui_helpers import wait_frame
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db.records import Annotation
from src.training.learning.settings import LearnSettings
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_a_frame_with_only_a_tag_gets_proposals(qtbot, project):
    from src.gui.main_window import MainWindow
    _, frames = make_source(project, 3, annotate=False)
    for name in ("red", "blue"):
        classes_repo.ensure_class(project.conn, name)
    night = classes_repo.ensure_class(project.conn, "night", kind="tag")
    annotations_repo.add_annotation(project.conn, Annotation(frames[1].id, night.id, "tag", None))
    make_base(project)
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitUntil(lambda: win.player.image is not None and win.annotator.frame is not None)
    win.learning.settings = LearnSettings(update_every=0, budget_s=30)
    toggle = win.learning_toolbar.widgetForAction(win.actions["learn_toggle"])
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert win.learning.learner is not None
    win.statusBar().clearMessage()
    view = win.annotator.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    wait_frame(qtbot, win, 1)
    qtbot.waitUntil(lambda: "proposal(s) from" in win.statusBar().currentMessage())
    win.learning.stop()
    win.close()
