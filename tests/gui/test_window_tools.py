"""What a user expects to find: the toolbar, an empty project's first step, drop to import,
Import annotations / Export dialogs, Tools › Check annotations."""
from __future__ import annotations

import json

import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QPushButton, QToolButton

from gui_helpers import wait_frame
from src.db import annotations as ann_repo
from src.db import frames as frame_repo
from src.db import sources as source_repo
from src.db.project import Project
from src.db.records import Annotation

pytestmark = pytest.mark.gui


def _open(qtbot, root):
    from src.gui.main_window import MainWindow
    win = MainWindow(root)
    qtbot.addWidget(win)
    win.resize(1000, 720)
    win.show()
    qtbot.waitExposed(win)
    return win


def _press(widget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_toolbar_tools_and_current_class(window, gui_project):
    bar = window.toolbar
    view = window.annotator.view
    _press(bar.findChild(QToolButton, "toolbar_mode_polygon"))
    assert view.mode == "polygon" and window.actions["mode_polygon"].isChecked()
    _press(bar.findChild(QToolButton, "toolbar_mode_edit"))
    assert view.mode == "edit"
    _press(bar.findChild(QToolButton, "toolbar_mode_box"))
    assert view.mode == "box"
    combo = bar.class_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["car", "person"]
    combo.showPopup()
    QTest.keyClick(combo.view(), Qt.Key.Key_Down)
    QTest.keyClick(combo.view(), Qt.Key.Key_Return)
    person = window.session.classes()[1]
    assert window.session.current_class_id == person.id
    window.actions["class_1"].trigger()                      # key 1 updates the toolbar
    assert combo.currentText() == "car"
    view.zoom_by(3.0)
    _press(bar.findChild(QToolButton, "toolbar_zoom_fit"))
    assert view.mapFromScene(QPointF(0, 0)).x() >= 0         # the whole image is in view again


def test_an_empty_project_says_what_to_do_and_a_drop_imports(qtbot, tmp_path, tiny_video):
    win = _open(qtbot, tmp_path / "fresh")
    hint = win.annotator.hint
    assert hint.isVisible() and "Import a video" in hint.label.text()
    buttons = {b.text().replace("&", "").rstrip("…") for b in hint.findChildren(QToolButton)}
    assert {"Import video", "Import image folder"} <= buttons
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_video))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)                  # as a real drag does first
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, drop)
    qtbot.waitUntil(lambda: win.player.image is not None, timeout=10000)
    assert not hint.isVisible() and win.annotator.view.isVisible()
    [source] = source_repo.list_sources(win.session.conn)
    assert source.name == tiny_video.name
    win.close()


def test_export_coco_then_import_into_another_project(window, gui_project, qtbot, tmp_path):
    project, source = gui_project
    frame = window.capture()
    car = window.session.classes()[0]
    ann_repo.add_annotation(project.conn, Annotation(frame.id, car.id, "box", [5, 6, 40, 30]))
    window.actions["export"].trigger()
    dialog = window.tools.export_dialog
    dialog.format_combo.setCurrentText("coco")
    out = tmp_path / "coco_out"
    QTest.keyClicks(dialog.path_edit, str(out))
    _press(dialog.run_button)
    qtbot.waitUntil(lambda: not dialog.running and dialog.summary.toPlainText().startswith("{"),
                    timeout=15000)
    summary = json.loads(dialog.summary.toPlainText())
    assert summary["format"] == "coco" and summary["path"] == str(out)
    _press(dialog.close_button)

    window.open_project(tmp_path / "second")
    assert window.player_bar.time_label.text().startswith("frame 0 / 0")   # nothing stale
    assert window.status.frame_label.text() == ""
    window.actions["import_annotations"].trigger()
    dialog = window.tools.import_dialog
    dialog.format_combo.setCurrentText("coco")
    QTest.keyClicks(dialog.path_edit, str(out))
    _press(dialog.run_button)
    qtbot.waitUntil(lambda: not dialog.running and dialog.summary.toPlainText().startswith("{"),
                    timeout=15000)
    shown = json.loads(dialog.summary.toPlainText())
    assert shown["images"] == 1 and shown["annotations"] == 1 and shown["new_classes"] == ["car", "person"]
    [box] = ann_repo.list_annotations(window.session.conn)
    assert box.geometry == pytest.approx([5, 6, 40, 30])
    assert [c.name for c in window.session.classes()] == ["car", "person"]   # panel told
    qtbot.waitUntil(lambda: window.player.image is not None)         # the new source opened
    # The same summary as the CLI's: the same call on a third project gives the same counts.
    with Project.open(tmp_path / "third") as third:
        from src.data.formats import import_annotations
        assert import_annotations(third, out, "coco") == shown


def test_a_failed_import_shows_an_error_and_changes_nothing(window, gui_project, qtbot, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    window.actions["import_annotations"].trigger()
    dialog = window.tools.import_dialog
    dialog.format_combo.setCurrentText("coco")
    QTest.keyClicks(dialog.path_edit, str(bad))
    _press(dialog.run_button)
    qtbot.waitUntil(lambda: not dialog.running and "Failed" in dialog.summary.toPlainText(),
                    timeout=15000)
    boxes = [w for w in QApplication.topLevelWidgets()
             if w.objectName() == "errorDialog" and w.isVisible()]
    assert boxes and "bad.json" in (boxes[0].text() + boxes[0].informativeText())
    assert ann_repo.list_annotations(window.session.conn) == []


def test_check_annotations_lists_opens_and_clips_undoably(window, gui_project, qtbot):
    project, source = gui_project
    frame = window.capture()
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, 10)
    car = window.session.classes()[0]
    w, h = frame.width, frame.height
    outside, flat = ann_repo.add_annotations(project.conn, [
        Annotation(frame.id, car.id, "box", [-10, 5, 30, 30]),        # clip fixes it
        Annotation(frame.id, car.id, "box", [10, 10, 10, 30])])       # zero area: cannot
    bowtie = ann_repo.add_annotation(project.conn, Annotation(
        frame.id, car.id, "polygon", [[0, 0], [30, 30], [30, 0], [0, 30]]))
    window.actions["check"].trigger()
    dialog = window.tools.check_dialog
    table = dialog.table
    problems = [table.item(r, 3).text() for r in range(table.rowCount())]
    assert len(problems) == 3
    assert any("outside" in p for p in problems) and any("zero" in p for p in problems)
    assert any("self-intersecting" in p for p in problems)
    assert [table.item(r, 4).text() for r in range(table.rowCount())].count("yes") == 1

    row = problems.index(next(p for p in problems if "self-intersecting" in p))
    rect = table.visualRect(table.model().index(row, 3))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     rect.center())
    wait_frame(qtbot, window, 0)
    assert window.annotator.view.selected_ids() == [bowtie.id]

    _press(dialog.clip_button)
    assert ann_repo.get_annotation(project.conn, outside.id).geometry == [0, 5, 30, 30]
    assert table.rowCount() == 2                          # re-checked after the fix
    window.actions["undo"].trigger()
    assert ann_repo.get_annotation(project.conn, outside.id).geometry == [-10, 5, 30, 30]
    assert table.rowCount() == 3
    assert flat.id in {dialog.findings[r].annotation.id for r in range(3)}
    assert (w, h) == (96, 64)
    _press(dialog.findChild(QPushButton, "closeCheckButton"))
    assert not dialog.isVisible()
    assert frame_repo.count_frames(project.conn) == 1


@pytest.mark.slow          # importing the dataset builder loads albumentations/torch
def test_export_a_dataset_version_as_voc(window, gui_project, qtbot, tmp_path):
    from src.data.capture import capture_frames
    from src.data.datasets import DatasetSpec, build_dataset
    project, source = gui_project
    car = window.session.classes()[0]
    frames = capture_frames(project, source, range(0, 40, 4))
    ann_repo.add_annotations(project.conn, [Annotation(f.id, car.id, "box", [5, 5, 40, 30])
                                            for f in frames])
    window.actions["export"].trigger()                 # made before the dataset exists
    _press(window.tools.export_dialog.close_button)
    build_dataset(project, DatasetSpec(name="cars", task="detect", group_by="none"))
    window.actions["export"].trigger()
    dialog = window.tools.export_dialog
    what = dialog.what_combo
    assert what.findData("cars:v1") > 0                 # listed afresh when shown
    what.showPopup()
    QTest.keyClick(what.view(), Qt.Key.Key_Down)
    QTest.keyClick(what.view(), Qt.Key.Key_Return)
    assert what.currentData() == "cars:v1"
    dialog.format_combo.setCurrentText("voc")
    QTest.keyClicks(dialog.path_edit, str(tmp_path / "voc"))
    _press(dialog.run_button)
    qtbot.waitUntil(lambda: not dialog.running and dialog.summary.toPlainText().startswith("{"),
                    timeout=15000)
    summary = json.loads(dialog.summary.toPlainText())
    assert summary["format"] == "voc" and summary["images"] == len(frames)
    assert len(list((tmp_path / "voc").rglob("*.xml"))) == len(frames)
