"""Learn from my corrections updates "when the user pauses": no edit and no frame change for
a while (PAUSE_MS; shortened here) starts an update of the frames corrected since the last one,
without Update now; with nothing new corrected, a pause starts nothing."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from gui_helpers import drag, view_point, wait_frame
from src.db import classes as classes_repo
from src.db import learning as learning_repo
from src.training.learning.settings import LearnSettings
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_a_pause_after_corrections_starts_an_update(qtbot, project):
    from src.gui.main_window import MainWindow
    make_source(project, 4, annotate=False)
    for name in ("red", "blue"):
        classes_repo.ensure_class(project.conn, name)
    make_base(project)
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.player.image is not None and bool(win.annotator.view.image_size))
        win.learning.settings = LearnSettings(max_epochs=1, update_every=0, lr=1e-2, batch=4,
                                              budget_s=60)
        win.learning.pause_timer.setInterval(400)
        toggle = win.learning_toolbar.widgetForAction(win.actions["learn_toggle"])
        qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
        learner = win.learning.learner
        view = win.annotator.view
        for index in (0, 1):                         # correct two frames, moving on each time
            drag(view, view_point(view, 8, 8), view_point(view, 30, 30))
            qtbot.waitUntil(lambda: len(win.annotator.anns) >= 1)
            view.setFocus()
            qtbot.keyClick(view, Qt.Key.Key_Right)
            wait_frame(qtbot, win, index + 1)
        assert learner.pending_corrections == 2
        # No click on Update now: the pause alone starts it.
        qtbot.waitUntil(lambda: bool(learning_repo.list_updates(project.conn, learner.record.id)),
                        timeout=120000)
        assert learner.pending_corrections == 0
        qtbot.waitUntil(lambda: not learner.updating, timeout=120000)
        qtbot.wait(1200)                             # pauses again: nothing new to learn
        assert len(learning_repo.list_updates(project.conn, learner.record.id)) == 1
    finally:
        win.learning.stop()
        win.close()
