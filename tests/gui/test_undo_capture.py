"""Undo names its command and shows what it changed; capture is undoable; a refused draw
leaves no empty frame; the decoder's timestamp is stored."""
from __future__ import annotations

import pytest
from PyQt6.QtWidgets import QApplication

from gui_helpers import drag, open_main_window, view_point, wait_frame
from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import frames as frame_repo

pytestmark = pytest.mark.gui


def _draw_box(window, box):
    view = window.annotator.view
    drag(view, view_point(view, *box[:2]), view_point(view, *box[2:]))
    return [a for a in ann_repo.list_annotations(window.session.conn) if a.kind == "box"][-1]


def test_undo_and_redo_are_named_after_the_command(window, gui_project):
    view = window.annotator.view
    ann = _draw_box(window, [20, 10, 50, 40])
    undo, redo = window.actions["undo"], window.actions["redo"]
    assert undo.text() == "&Undo Add box 'car' (captures the frame)"
    window.actions["mode_edit"].trigger()
    drag(view, view_point(view, 35, 25), view_point(view, 45, 30))
    assert undo.text() == "&Undo Move box 'car'"
    drag(view, view.handle_view_pos(ann.id, 4), view_point(view, 70, 55))
    assert undo.text() == "&Undo Resize box 'car'"
    undo.trigger()
    assert undo.text() == "&Undo Move box 'car'" and redo.text() == "&Redo Resize box 'car'"
    window.actions["delete"].trigger()
    assert undo.text() == "&Undo Delete box 'car'"


def test_undo_on_another_frame_goes_there_and_selects_the_shape(window, gui_project, qtbot):
    project, _ = gui_project
    view = window.annotator.view
    first = _draw_box(window, [20, 10, 50, 40])
    window.actions["mode_edit"].trigger()
    drag(view, view_point(view, 35, 25), view_point(view, 45, 30))         # move on frame 0
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, 10)
    window.actions["mode_box"].trigger()
    second = _draw_box(window, [5, 5, 25, 25])                             # a box on frame 10
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, 20)

    window.actions["undo"].trigger()         # undoes the box on frame 10: goes there
    wait_frame(qtbot, window, 10)
    assert ann_repo.get_annotation(project.conn, second.id) is None
    window.actions["undo"].trigger()         # undoes the move on frame 0: goes there, selected
    wait_frame(qtbot, window, 0)
    assert view.selected_ids() == [first.id]
    assert ann_repo.get_annotation(project.conn, first.id).geometry == pytest.approx(
        [20, 10, 50, 40], abs=1.0)
    window.actions["redo"].trigger()         # redo stays, still selected, moved again
    assert view.selected_ids() == [first.id]
    window.actions["redo"].trigger()         # redo the box on frame 10: back there, selected
    wait_frame(qtbot, window, 10)
    assert view.selected_ids() == [second.id]


def test_capture_is_undoable_and_stores_the_decoders_timestamp(window, gui_project, qtbot):
    project, source = gui_project
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, 10)
    window.actions["capture"].trigger()
    [frame] = frame_repo.list_frames(project.conn)
    image = project.abspath(frame.image_path)
    assert image.is_file() and frame.frame_index == 10
    assert frame.timestamp_s == pytest.approx(window.player.image_timestamp)
    assert frame.timestamp_s == pytest.approx(1.0, abs=1e-3)      # frame 10 at 10 fps
    assert window.actions["undo"].text() == "&Undo Capture frame 10"
    window.actions["undo"].trigger()
    assert frame_repo.list_frames(project.conn) == [] and not image.exists()
    assert window.annotator.frame is None
    assert "frame 10 (not captured)" in window.status.frame_label.text()
    window.actions["redo"].trigger()
    [back] = frame_repo.list_frames(project.conn)
    assert back.id == frame.id and image.is_file()


def test_undoing_a_draw_on_a_new_frame_removes_the_frame_too(window, gui_project):
    project, _ = gui_project
    _draw_box(window, [20, 10, 50, 40])
    [frame] = frame_repo.list_frames(project.conn)
    window.actions["undo"].trigger()
    assert ann_repo.list_annotations(project.conn) == []
    assert frame_repo.list_frames(project.conn) == []
    assert not project.abspath(frame.image_path).exists()


def test_a_refused_draw_leaves_no_empty_frame(qtbot, project, tiny_video):
    from src.data.capture import import_media
    import_media(project, tiny_video)              # no classes: a shape is refused
    win = open_main_window(qtbot, project.root, (900, 700))
    view = win.annotator.view
    drag(view, view_point(view, 10, 10), view_point(view, 40, 40))
    assert frame_repo.list_frames(project.conn) == []
    assert ann_repo.list_annotations(project.conn) == []
    assert not win.session.undo_stack.canUndo()
    boxes = [w for w in QApplication.topLevelWidgets()
             if w.objectName() == "errorDialog" and w.isVisible()]
    assert boxes and "class" in boxes[0].text()        # the user is told why
    win.close()
    assert class_repo.list_classes(project.conn) == []


def test_a_failed_capture_under_a_draw_leaves_nothing_to_undo(window, gui_project, monkeypatch):
    project, _ = gui_project

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("src.gui.session.capture_array", disk_full)
    view = window.annotator.view
    drag(view, view_point(view, 10, 10), view_point(view, 40, 40))
    assert frame_repo.list_frames(project.conn) == []
    assert ann_repo.list_annotations(project.conn) == []
    assert not window.session.undo_stack.canUndo()      # no "Undo Add box" that does nothing
    boxes = [w for w in QApplication.topLevelWidgets()
             if w.objectName() == "errorDialog" and w.isVisible()]
    assert boxes and "space" in (boxes[0].text() + boxes[0].informativeText()).lower()


def _write_vfr(path, n=30):
    """H.264 whose first 20 frames last 40 ms and the rest 100 ms (variable frame rate)."""
    import av
    import numpy as np
    from fractions import Fraction
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.options = {"preset": "ultrafast",
                                        "x264-params": "keyint=10:min-keyint=10:scenecut=0"}
        t = 0
        for i in range(n):
            image = av.VideoFrame.from_ndarray(np.full((64, 96, 3), i * 8, np.uint8), "bgr24")
            image.pts, image.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(image))
            t += 40 if i < 19 else 100
        container.mux(stream.encode())
    return path


def test_capture_stores_the_real_time_of_a_variable_rate_frame(qtbot, project, tmp_path):
    from src.data.capture import import_media
    from src.gui.main_window import MainWindow
    import_media(project, _write_vfr(tmp_path / "phone.mp4"))
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.player.image is not None)
    win.player_bar.frame_box.setValue(25)                  # the box seeks like a user's entry
    wait_frame(qtbot, win, 25)
    qtbot.waitUntil(lambda: "00:01.360" in win.player_bar.time_label.text())    # shown too
    win.actions["capture"].trigger()
    [frame] = frame_repo.list_frames(project.conn)
    assert frame.timestamp_s == pytest.approx(19 * 0.040 + 6 * 0.100, abs=1e-3)   # 1.36 s
    assert frame.timestamp_s != pytest.approx(25 / win.player.fps, abs=0.05)      # not index/fps
    win.close()
