"""The transport bar by mouse and keyboard: the frame box gives the keys back, a click on the
track jumps there, whole source names, and scrubbing shows a nearby keyframe at once."""
from __future__ import annotations

import av
import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from gui_helpers import wait_frame
from src.data.capture import import_media
from src.data.video import open_media
from src.db import classes as class_repo
from src.db import frames as frame_repo

pytestmark = pytest.mark.gui


def write_h264(path, frames=80, gop=20, size=(160, 96)):
    """A small H.264 video with a keyframe every `gop` frames; frame i has grey level 3i."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for i in range(frames):
            image = np.full((size[1], size[0], 3), (i * 3) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _slider_x(slider, value: int) -> int:
    span = slider.width()
    return round(value / slider.maximum() * (span - 1)) if slider.maximum() else 0


def _mouse(widget, kind, x: int, buttons=Qt.MouseButton.LeftButton) -> None:
    pos = QPointF(x, widget.height() / 2)
    button = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseMove else \
        Qt.MouseButton.NoButton
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_frame_box_gives_the_keyboard_back_after_enter(window, gui_project, qtbot):
    project, _ = gui_project
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    box = window.player_bar.frame_box
    QTest.mouseClick(box.lineEdit(), Qt.MouseButton.LeftButton)
    box.lineEdit().selectAll()
    QTest.keyClicks(box.lineEdit(), "12")
    QTest.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    wait_frame(qtbot, window, 12)
    assert window.annotator.view.hasFocus()          # C, Space and digits reach the window
    QTest.keyClick(window.windowHandle(), Qt.Key.Key_C)   # through Qt's shortcut handling
    qtbot.waitUntil(lambda: frame_repo.count_frames(project.conn) == 1)
    assert frame_repo.list_frames(project.conn)[0].frame_index == 12


def test_clicking_the_slider_track_jumps_there(window, gui_project, qtbot):
    slider = window.player_bar.slider
    x = _slider_x(slider, 30)
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(x, slider.height() // 2))
    qtbot.waitUntil(lambda: window.player.index not in (-1, 0))
    assert abs(window.player.index - 30) <= 2              # where the click was, not a page step
    assert window.player.index == slider.value()


def test_source_selector_shows_whole_names(qtbot, project, tmp_path):
    from src.gui.main_window import MainWindow
    name = "front_door_camera_recording_2024-05-01_morning_shift_part_two.mp4"
    import_media(project, write_h264(tmp_path / name, frames=5))
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.show()
    combo = win.player_bar.source_combo
    shown = combo.currentText()
    assert "…" in shown and shown.startswith("front_door") and shown.endswith("(5 fr)")
    assert combo.fontMetrics().horizontalAdvance(shown) <= combo.width()   # nothing cut
    assert name in combo.toolTip()
    assert name in combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    win.close()


def test_scrubbing_shows_a_keyframe_at_once_and_the_exact_frame_on_release(qtbot, project,
                                                                          tmp_path):
    from src.gui.main_window import MainWindow
    video = write_h264(tmp_path / "clip.mp4")
    import_media(project, video)
    class_repo.add_class(project.conn, "car")
    win = MainWindow(project.root)
    qtbot.addWidget(win)
    win.resize(900, 700)
    win.show()
    qtbot.waitUntil(lambda: win.player.image is not None)
    qtbot.waitUntil(lambda: win.player._decoder.worker.keyframes is not None, timeout=5000)
    slider, label = win.player_bar.slider, win.player_bar.time_label
    previews = []
    win.player.preview_shown.connect(lambda asked, shown, _img: previews.append((asked, shown)))
    _mouse(slider, QMouseEvent.Type.MouseButtonPress, _slider_x(slider, 0))
    for value in (10, 27, 33, 47):
        _mouse(slider, QMouseEvent.Type.MouseMove, _slider_x(slider, value))
        qtbot.waitUntil(lambda: bool(previews) and previews[-1][0] == slider.value())
        asked, shown = previews[-1]
        assert shown in (0, 20, 40, 60) or shown in win.player._decoder.worker.reader.cache
        assert abs(shown - asked) <= 10                    # the nearest keyframe (gop 20)
        if shown != asked:
            assert label.text().startswith("≈")          # marked approximate
    released_at = slider.value()
    _mouse(slider, QMouseEvent.Type.MouseButtonRelease, _slider_x(slider, 47),
           buttons=Qt.MouseButton.NoButton)
    wait_frame(qtbot, win, released_at)
    assert not label.text().startswith("≈")
    with open_media(video) as reference:                  # the exact frame, not a neighbour
        assert np.array_equal(win.player.image, reference.read(released_at))
    win.close()


def test_the_project_reopens_where_the_user_left_it(window, gui_project, qtbot):
    from src.gui.main_window import MainWindow
    project, _ = gui_project
    window.actions["forward10"].trigger()
    window.actions["forward1"].trigger()
    wait_frame(qtbot, window, 11)
    window.actions["class_2"].trigger()                       # 'person'
    view = window.annotator.view
    view.zoom_by(2.5)
    view.centerOn(30, 20)
    zoom = view.scale_factor()
    window.close()

    again = MainWindow(project.root)
    qtbot.addWidget(again)
    again.resize(900, 700)
    again.show()
    wait_frame(qtbot, again, 11)
    assert again.session.class_by_id(again.session.current_class_id).name == "person"
    assert again.toolbar.class_combo.currentText() == "person"
    assert again.annotator.view.scale_factor() == pytest.approx(zoom)
    center = again.annotator.view.mapToScene(again.annotator.view.viewport().rect().center())
    assert (center.x(), center.y()) == pytest.approx((30, 20), abs=2)
    again.close()


def test_the_slider_keeps_its_size_while_the_label_says_approximate(window):
    bar = window.player_bar
    before = bar.slider.geometry()
    bar.set_position(37, 40, None, approximate_of=30)
    bar.layout().activate()
    assert bar.time_label.text().startswith("≈ frame 37")
    assert bar.slider.geometry() == before
    bar.set_position(37, 40, 3.7)
    bar.layout().activate()
    assert bar.slider.geometry() == before
