"""Drawing, editing, zoom/pan and undo on the real annotator view, with the real store."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from gui_helpers import add_class_by_clicks, click, drag, view_point, wait_frame
from src.db import annotations as ann_repo
from src.db import frames as frame_repo
from src.db.records import Annotation

pytestmark = pytest.mark.gui


def _shapes(project):
    return [a for a in ann_repo.list_annotations(project.conn) if a.kind != "tag"]


def _assert_points(got, want, tol=1.0):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == pytest.approx(list(w), abs=tol)


def _zoom_and_pan(view, zoom: float, pan: tuple[int, int]) -> None:
    view.zoom_to_fit()
    view.zoom_by(zoom / view.scale_factor())
    view.pan_by(*pan)


@pytest.mark.parametrize("zoom, pan", [(1.5, (0, 0)), (4.0, (-40, 25))])
def test_dragged_box_is_stored_in_image_pixels(window, gui_project, zoom, pan):
    project, source = gui_project
    view = window.annotator.view
    _zoom_and_pan(view, zoom, pan)
    assert view.scale_factor() == pytest.approx(zoom)
    # Pick the drag in image space, away from the pan's clipping, then drive it on screen.
    x1, y1, x2, y2 = 20.0, 10.0, 50.0, 40.0
    if zoom > 2:
        view.centerOn(35, 25)
    drag(view, view_point(view, x1, y1), view_point(view, x2, y2))
    [box] = _shapes(project)
    assert box.kind == "box" and box.status == "accepted" and box.source == "manual"
    assert box.geometry == pytest.approx([x1, y1, x2, y2], abs=1.0)
    # Drawing on a frame that was not captured captured it first.
    frame = frame_repo.get_frame(project.conn, box.frame_id)
    assert (frame.source_id, frame.frame_index) == (source.id, 0)
    assert project.abspath(frame.image_path).is_file()


@pytest.mark.parametrize("zoom, pan", [(1.0, (0, 0)), (3.0, (30, -20))])
def test_clicked_polygon_is_stored_in_image_pixels(window, gui_project, qtbot, zoom, pan):
    project, _ = gui_project
    view = window.annotator.view
    window.actions["mode_polygon"].trigger()
    _zoom_and_pan(view, zoom, pan)
    view.centerOn(40, 30)
    points = [(30.0, 15.0), (60.0, 20.0), (55.0, 45.0), (28.0, 40.0)]
    for x, y in points:
        click(view, view_point(view, x, y))
    assert _shapes(project) == []          # not closed yet: nothing stored
    click(view, view_point(view, *points[0]))     # clicking the first point closes it
    [poly] = _shapes(project)
    assert poly.kind == "polygon"
    _assert_points(poly.geometry, points)


def test_polygon_enter_closes_and_escape_cancels(window, gui_project):
    project, _ = gui_project
    view = window.annotator.view
    window.actions["mode_polygon"].trigger()
    for x, y in [(10, 10), (40, 12), (30, 40)]:
        click(view, view_point(view, x, y))
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert _shapes(project) == [] and not view.drawing
    for x, y in [(10, 10), (40, 12), (30, 40)]:
        click(view, view_point(view, x, y))
    QTest.keyClick(view, Qt.Key.Key_Return)
    [poly] = _shapes(project)
    _assert_points(poly.geometry, [(10, 10), (40, 12), (30, 40)])


def test_a_click_is_not_a_box(window, gui_project):
    project, _ = gui_project
    view = window.annotator.view
    click(view, view_point(view, 30, 30))
    assert _shapes(project) == []


def _draw_box(window, box) -> Annotation:
    view = window.annotator.view
    drag(view, view_point(view, *box[:2]), view_point(view, *box[2:]))
    return _shapes(window.session.project)[-1]


def test_move_resize_delete_undo_redo(window, gui_project, qtbot):
    project, _ = gui_project
    view = window.annotator.view
    view.zoom_by(2.0)
    view.centerOn(40, 30)
    ann = _draw_box(window, [20, 10, 50, 40])
    assert view.selected_ids() == [ann.id]
    original = list(ann.geometry)

    window.actions["mode_edit"].trigger()
    drag(view, view_point(view, 35, 25), view_point(view, 45, 30))      # move by (+10, +5)
    moved = ann_repo.get_annotation(project.conn, ann.id)
    assert moved.geometry == pytest.approx([30, 15, 60, 45], abs=1.0)

    # Bottom-right handle (index 4) to (70, 55).
    drag(view, view.handle_view_pos(ann.id, 4), view_point(view, 70, 55))
    resized = ann_repo.get_annotation(project.conn, ann.id)
    assert resized.geometry == pytest.approx([30, 15, 70, 55], abs=1.0)

    window.actions["delete"].trigger()
    assert ann_repo.get_annotation(project.conn, ann.id) is None
    assert view.items_by_id == {}

    window.actions["undo"].trigger()                                      # undo delete
    restored = ann_repo.get_annotation(project.conn, ann.id)
    assert restored is not None and restored.geometry == resized.geometry
    assert ann.id in view.items_by_id

    window.actions["redo"].trigger()                                      # redo delete
    assert ann_repo.get_annotation(project.conn, ann.id) is None

    for _ in range(3):                                                    # delete, resize, move
        window.actions["undo"].trigger()
    back = ann_repo.get_annotation(project.conn, ann.id)
    assert back.geometry == pytest.approx(original, abs=1e-6)
    window.actions["undo"].trigger()                                      # the creation itself
    assert _shapes(project) == []


def test_polygon_vertex_handle_moves_one_point(window, gui_project):
    project, _ = gui_project
    view = window.annotator.view
    window.actions["mode_polygon"].trigger()
    for x, y in [(10, 10), (40, 12), (30, 40)]:
        click(view, view_point(view, x, y))
    QTest.keyClick(view, Qt.Key.Key_Return)
    [poly] = _shapes(project)
    view.select([poly.id])
    drag(view, view.handle_view_pos(poly.id, 2), view_point(view, 35, 50))
    stored = ann_repo.get_annotation(project.conn, poly.id).geometry
    assert stored[:2] == poly.geometry[:2]
    assert stored[2] == pytest.approx([35, 50], abs=1.0)


def test_undo_stack_survives_switching_frames(window, gui_project, qtbot):
    project, _ = gui_project
    ann = _draw_box(window, [20, 10, 50, 40])
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, 10)
    assert window.annotator.view.items_by_id == {}
    window.actions["undo"].trigger()
    assert ann_repo.get_annotation(project.conn, ann.id) is None
    window.actions["redo"].trigger()
    assert ann_repo.get_annotation(project.conn, ann.id).geometry == ann.geometry


def test_zoom_and_pan_are_kept_between_frames(window, qtbot):
    view = window.annotator.view
    view.zoom_by(3.0, QPoint(100, 80))
    view.pan_by(15, -10)
    transform, scroll = view.transform(), (view.horizontalScrollBar().value(),
                                           view.verticalScrollBar().value())
    window.actions["forward1"].trigger()
    wait_frame(qtbot, window, 1)
    assert view.transform() == transform
    assert (view.horizontalScrollBar().value(), view.verticalScrollBar().value()) == scroll


def test_wheel_zoom_keeps_the_point_under_the_cursor(window):
    view = window.annotator.view
    cursor = view_point(view, 30, 20)
    before = view.mapToScene(cursor)
    for _ in range(3):
        view.zoom_by(1.25, cursor)
    after = view.mapToScene(cursor)
    assert view.scale_factor() > 1.9
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=1.0)


@pytest.mark.parametrize("how", ["middle", "space"])
def test_drag_pans_with_middle_button_or_space(window, gui_project, how):
    view = window.annotator.view
    view.zoom_by(4.0)
    start = view.viewport().rect().center()
    before = view.mapToScene(start)
    if how == "space":
        QTest.keyPress(view, Qt.Key.Key_Space)
        drag(view, start, start + QPoint(40, 20))
        QTest.keyRelease(view, Qt.Key.Key_Space)
        assert not window.player.playing            # a space-drag is a pan, not play/pause
        assert _shapes(gui_project[0]) == []        # and draws nothing
    else:
        drag(view, start, start + QPoint(40, 20), button=Qt.MouseButton.MiddleButton)
    after = view.mapToScene(start)
    # The image moved with the mouse: the point under the start position is now up-left.
    scale = view.scale_factor()
    assert after.x() == pytest.approx(before.x() - 40 / scale, abs=0.1)
    assert after.y() == pytest.approx(before.y() - 20 / scale, abs=0.1)


def test_proposals_are_dashed_and_accepted_or_rejected(window, gui_project):
    project, source = gui_project
    frame = window.capture()
    classes = window.session.classes()
    proposals = ann_repo.add_annotations(project.conn, [
        Annotation(frame.id, classes[0].id, "box", [5, 5, 30, 30], source="model:1",
                   confidence=0.87, status="proposed"),
        Annotation(frame.id, classes[1].id, "box", [40, 5, 70, 30], source="model:1",
                   confidence=0.42, status="proposed"),
        Annotation(frame.id, classes[1].id, "box", [10, 35, 30, 55], source="model:1",
                   confidence=0.31, status="proposed")])
    window.session.annotations_changed.emit()
    view = window.annotator.view
    items = [view.items_by_id[p.id] for p in proposals]
    assert all(i.pen().style() == Qt.PenStyle.DashLine for i in items)
    assert items[0].label.text == "car 0.87"

    view.select([proposals[0].id])
    window.actions["accept"].trigger()
    assert ann_repo.get_annotation(project.conn, proposals[0].id).status == "accepted"
    assert view.items_by_id[proposals[0].id].pen().style() == Qt.PenStyle.SolidLine

    view.select([proposals[1].id])
    window.actions["reject"].trigger()
    assert ann_repo.get_annotation(project.conn, proposals[1].id) is None

    window.actions["accept_all"].trigger()
    assert ann_repo.get_annotation(project.conn, proposals[2].id).status == "accepted"
    window.actions["undo"].trigger()
    assert ann_repo.get_annotation(project.conn, proposals[2].id).status == "proposed"
    window.actions["reject_all"].trigger()
    assert [a.id for a in _shapes(project)] == [proposals[0].id]


def test_frame_tags_toggle_with_alt_keys(qtbot, window, gui_project):
    project, _ = gui_project
    for name in ("day", "night"):
        add_class_by_clicks(qtbot, window, name, "tag")
    window.actions["tag_2"].trigger()
    [tag] = ann_repo.list_annotations(project.conn)
    night = window.session.classes("tag")[1]
    assert (tag.kind, tag.class_id, tag.geometry) == ("tag", night.id, None)
    assert window.annotator.tag_bar.tagged() == {night.id}
    window.actions["tag_2"].trigger()
    assert ann_repo.list_annotations(project.conn) == []
    window.actions["undo"].trigger()
    assert [a.id for a in ann_repo.list_annotations(project.conn)] == [tag.id]
    assert window.annotator.tag_bar.tagged() == {night.id}


def test_nothing_can_be_drawn_while_playing(window, gui_project, qtbot):
    project, _ = gui_project
    window.player.play()
    view = window.annotator.view
    drag(view, view_point(view, 10, 10), view_point(view, 40, 40))
    window.player.pause()
    assert _shapes(project) == []


def test_space_tap_on_the_canvas_plays_and_pauses(window):
    view = window.annotator.view
    QTest.keyClick(view, Qt.Key.Key_Space)
    assert window.player.playing
    QTest.keyClick(view, Qt.Key.Key_Space)
    assert not window.player.playing
