"""The pattern for every window: click every enabled button and trigger every enabled action
(dialogs answered through their widgets), then the window is alive and the store is sound."""
from __future__ import annotations

import shutil

import pytest

from gui_helpers import click_everything, integrity_check, wait_no_modal
from src.data.demo import build_demo_project

pytestmark = pytest.mark.gui


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    build_demo_project(root).close()
    return root


@pytest.fixture
def demo_dir(demo_template, tmp_path):
    target = tmp_path / "demo"
    shutil.copytree(demo_template, target)
    return target


def _open(qtbot, project_dir):
    from src.gui.main_window import MainWindow
    win = MainWindow(project_dir)
    qtbot.addWidget(win)
    win.resize(1100, 760)
    win.show()
    qtbot.waitExposed(win)
    return win


def _survives_everything(qtbot, win, project_dir) -> list[str]:
    done = click_everything(qtbot, win)
    assert win.isVisible() and win.session is not None
    win.player.pause()
    win.actions["quit"].trigger()            # last: Quit closes the window cleanly
    wait_no_modal(qtbot)
    assert not win.isVisible()
    assert integrity_check(project_dir / "project.db") == []
    return done


def test_click_everything_on_the_demo_project(qtbot, demo_dir):
    win = _open(qtbot, demo_dir)
    qtbot.waitUntil(lambda: win.player.image is not None)
    kinds = {c.name: c.kind for c in win.session.classes()}
    assert kinds == {"square": "object", "circle": "object", "triangle": "object",
                     "day": "tag", "night": "tag"}
    assert win.class_panel.tags.list.count() == 2 == len(win.annotator.tag_bar.buttons)
    done = _survives_everything(qtbot, win, demo_dir)
    assert any(d.startswith("click 'addClassButton'") for d in done), done
    assert any(d.startswith("trigger 'action_capture'") for d in done), done


def test_click_everything_on_a_new_empty_project(qtbot, tmp_path):
    project_dir = tmp_path / "new"
    win = _open(qtbot, project_dir)
    done = _survives_everything(qtbot, win, project_dir)
    assert any(d.startswith("click 'addClassButton'") for d in done), done
    assert any(d.startswith("accepted QInputDialog") or "NewClassDialog" in d for d in done), done
