"""Gallery items a user reads and keys: Del deletes selected frames (after the same
confirmation as the button), shapes drawn on thumbnails, whole labels, counts per filter."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtTest import QTest

from gui_helpers import ModalAnswerer
from src.data.capture import capture_frames
from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import frames as frame_repo
from src.db.records import Annotation

pytestmark = pytest.mark.gui


@pytest.fixture
def captured(gui_project):
    project, source = gui_project
    frames = capture_frames(project, source, [0, 5, 10])
    car, person = class_repo.list_classes(project.conn)
    ann_repo.add_annotations(project.conn, [
        Annotation(frames[1].id, car.id, "box", [10, 10, 60, 50]),
        Annotation(frames[2].id, person.id, "polygon", [[5, 5], [40, 5], [20, 40]])])
    return project, frames


def _select_rows(gallery, rows):
    selection = gallery.view.selectionModel()
    for row in rows:
        selection.select(gallery.model.index(row), selection.SelectionFlag.Select)


def _wait_thumbnails(qtbot, gallery):
    qtbot.waitUntil(lambda: all(s.frame.id in gallery.model._images for s in gallery.model.rows))


def test_del_on_selected_thumbnails_deletes_after_confirmation(captured, window, qtbot):
    project, frames = captured
    gallery = window.gallery
    _select_rows(gallery, [1, 2])
    gallery.view.setFocus()
    with ModalAnswerer(lambda d: (QTest.mouseClick(d.button(d.StandardButton.No),
                                                   Qt.MouseButton.LeftButton), "no")[1]) as a:
        QTest.keyClick(gallery.view, Qt.Key.Key_Delete)
    assert a.log == ["no"] and frame_repo.count_frames(project.conn) == 3
    _select_rows(gallery, [1, 2])
    with ModalAnswerer() as a:
        QTest.keyClick(gallery.view, Qt.Key.Key_Delete)
    assert a.log and "Delete 2 frame(s)" in a.log[0]
    assert [f.id for f in frame_repo.list_frames(project.conn)] == [frames[0].id]
    assert len(ann_repo.list_annotations(project.conn)) == 0
    window.actions["undo"].trigger()
    assert frame_repo.count_frames(project.conn) == 3


def test_thumbnails_show_the_frames_shapes(captured, window, qtbot):
    _, frames = captured
    gallery = window.gallery
    gallery.view.scrollToTop()
    _wait_thumbnails(qtbot, gallery)
    plain = gallery.model.index(0).data(Qt.ItemDataRole.DecorationRole).toImage()
    boxed = gallery.model.index(1).data(Qt.ItemDataRole.DecorationRole).toImage()
    raw = gallery.model._images[frames[1].id]
    scale = raw.width() / frames[1].width
    edge = boxed.pixelColor(round(35 * scale), round(10 * scale))   # on the box's top edge
    car = window.session.classes()[0]
    assert edge.name() != raw.pixelColor(round(35 * scale), round(10 * scale)).name()
    assert abs(edge.red() - int(car.color[1:3], 16)) < 60          # in the class colour
    assert plain.size() == raw.size()


def test_labels_name_source_frame_and_time_and_fit(captured, window):
    gallery = window.gallery
    text = gallery.model.index(1).data()
    lines = text.split("\n")
    assert lines[0] == "tiny.avi" and lines[1] == "#5  00:00.500"
    metrics = QFontMetrics(gallery.view.font())
    grid = gallery.view.gridSize()
    icon = gallery.view.iconSize()
    assert all(metrics.horizontalAdvance(line) <= grid.width() for line in lines)
    assert icon.height() + len(lines) * metrics.lineSpacing() <= grid.height()


def test_long_source_names_are_elided_in_the_middle(captured, window):
    gallery = window.gallery
    long_name = "a_very_long_recording_name_from_camera_number_seven_2024-05-01.mp4"
    gallery.model.source_names[captured[1][0].source_id] = long_name
    first = gallery.model.index(0).data().split("\n")[0]
    assert first != long_name and "…" in first
    assert first.startswith("a_very") and first.endswith(".mp4")
    assert long_name in gallery.model.index(0).data(Qt.ItemDataRole.ToolTipRole)


def test_filters_show_their_counts(captured, window, qtbot):
    project, frames = captured
    combo = window.gallery.filter_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts == ["All frames (3)", "No annotations (1)", "Class: car (1)", "Class: person (1)"]
    car = window.session.classes()[0]
    ann_repo.add_annotation(project.conn, Annotation(frames[0].id, car.id, "box", [1, 1, 9, 9]))
    window.session.annotations_changed.emit()
    qtbot.waitUntil(lambda: combo.itemText(2) == "Class: car (2)")
    assert combo.itemText(1) == "No annotations (0)"
