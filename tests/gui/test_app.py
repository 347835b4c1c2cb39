"""Window-level behaviour: entry point, project title and recent list, errors, shortcuts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QLabel

from gui_helpers import view_point
from src.db.project import Project
from src.gui import settings
from src.gui.actions import SPECS, ShortcutsDialog

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


def test_title_and_recent_projects_use_the_settings_dir(window, gui_project, tmp_path):
    project, _ = gui_project
    assert project.root.name in window.windowTitle()
    ini = tmp_path / "settings" / "labelloop.ini"
    assert ini.is_file()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("recent_projects") \
        in ([str(project.root)], str(project.root))
    other = Project.open(tmp_path / "other")
    other.close()
    assert window.open_project(other.root, create=False)
    assert "other" in window.windowTitle()
    assert settings.recent_projects()[:2] == [str(other.root), str(project.root)]


def test_opening_a_bad_project_shows_an_error_and_keeps_the_current_one(window, tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    before = window.session
    assert not window.open_project(not_a_folder)
    assert window.session is before
    boxes = [w for w in QApplication.topLevelWidgets()
             if w.objectName() == "errorDialog" and w.isVisible()]
    assert boxes and "folder" in boxes[0].text()
    assert not window.open_project(tmp_path / "missing", create=False)


def test_shortcuts_dialog_lists_every_shortcut(window):
    dialog = ShortcutsDialog(window)
    from PyQt6.QtWidgets import QTableWidget
    table = dialog.findChild(QTableWidget, "shortcutsTable")
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    for spec in SPECS:
        if spec.keys:
            assert ", ".join(spec.keys) in keys
            assert window.actions[spec.name].shortcut().toString() != ""
    dialog.close()


def test_status_bar_shows_cursor_in_image_pixels_and_has_a_models_slot(window):
    view = window.annotator.view
    view.zoom_by(2.5)
    view.centerOn(40, 30)
    QTest.mouseMove(view.viewport(), view_point(view, 33.4, 21.6))
    assert window.status.cursor_label.text() == "x 33  y 21"
    assert window.findChild(QLabel, "activeModelsLabel") is not None


def test_run_gui_opens_the_project_and_exits_cleanly(tmp_path):
    """In a child process: app.exec() cannot run twice in one pytest process."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from PyQt6.QtCore import QTimer\n"
        "from PyQt6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv)\n"
        "def done():\n"
        "    print([w.windowTitle() for w in app.topLevelWidgets()"
        " if w.objectName() == 'mainWindow' and w.isVisible()], flush=True)\n"
        "    app.quit()\n"
        "QTimer.singleShot(500, done)\n"
        "from src.gui.app import run_gui\n"
        f"sys.exit(run_gui(Path({str(tmp_path / 'fresh')!r})))\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LabelLoop — fresh" in out.stdout
    assert (tmp_path / "fresh" / "project.db").is_file()


def test_opencv_qt_plugin_paths_are_dropped_before_the_app_starts(monkeypatch):
    from src.gui.app import _drop_opencv_qt_paths
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/x/site-packages/cv2/qt/plugins")
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts")
    _drop_opencv_qt_paths()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts"      # not OpenCV's: kept


def test_time_label_shows_the_position_as_soon_as_a_source_opens(window):
    assert window.player_bar.time_label.text().startswith("frame 0 / 39")


def test_the_real_app_survives_an_exception_in_a_slot(tmp_path):
    """In a child process, through run_gui: without the hook PyQt6 aborts (exit 134)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from PyQt6.QtCore import QTimer\n"
        "from PyQt6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv)\n"
        "def broken():\n"
        "    raise RuntimeError('bug in a slot')\n"
        "def done():\n"
        "    shown = [w for w in app.topLevelWidgets()"
        " if w.objectName() == 'unexpectedErrorDialog' and w.isVisible()]\n"
        "    print('dialog shown' if shown else 'no dialog', flush=True)\n"
        "    app.quit()\n"
        "QTimer.singleShot(300, broken)\n"
        "QTimer.singleShot(900, done)\n"
        "from src.gui.app import run_gui\n"
        f"sys.exit(run_gui(Path({str(tmp_path / 'p')!r})))\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "dialog shown" in out.stdout
    assert "RuntimeError: bug in a slot" in (tmp_path / "p" / "logs" / "errors.log").read_text()
