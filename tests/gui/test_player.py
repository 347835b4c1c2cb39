"""Player: capture only while paused, seeking keeps the play state, stepping, playback."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from gui_helpers import VIDEO_FRAMES, wait_frame
from src.data.video import open_media
from src.db import frames as frame_repo

pytestmark = pytest.mark.gui


def test_capture_disabled_while_playing_enabled_when_paused(window, qtbot):
    capture = window.actions["capture"]
    assert capture.isEnabled()
    window.actions["play"].trigger()
    assert window.player.playing and not capture.isEnabled()
    qtbot.waitUntil(lambda: window.player.index >= 2)
    assert not capture.isEnabled()
    assert window.capture() is None                  # the action's slot refuses too
    window.actions["play"].trigger()
    assert not window.player.playing and capture.isEnabled()


def test_seeking_while_paused_stays_paused(window, qtbot):
    window.player_bar.frame_box.setValue(25)
    wait_frame(qtbot, window, 25)
    assert not window.player.playing
    window.player_bar.slider.setValue(7)
    wait_frame(qtbot, window, 7)
    assert not window.player.playing
    assert window.actions["capture"].isEnabled()
    assert window.player_bar.frame_box.value() == 7


def test_seeking_while_playing_plays_on(window, qtbot):
    window.player.play()
    window.player.seek(30)
    qtbot.waitUntil(lambda: window.player.index >= 30)
    assert window.player.playing
    window.player.pause()


def test_steps_clamp_to_the_video(window, qtbot):
    for name, expected in (("forward10", 10), ("forward1", 11), ("back1", 10), ("back10", 0),
                           ("back1", 0)):
        window.actions[name].trigger()
        wait_frame(qtbot, window, expected)
    window.player.seek(VIDEO_FRAMES + 50)
    wait_frame(qtbot, window, VIDEO_FRAMES - 1)
    window.actions["forward10"].trigger()
    wait_frame(qtbot, window, VIDEO_FRAMES - 1)
    assert "frame 39 / 39" in window.player_bar.time_label.text()


def test_playback_reaches_the_end_and_stops(window, qtbot):
    window.player.seek(VIDEO_FRAMES - 8)
    wait_frame(qtbot, window, VIDEO_FRAMES - 8)
    window.player.play()
    qtbot.waitUntil(lambda: not window.player.playing, timeout=5000)
    assert window.player.index == VIDEO_FRAMES - 1
    assert window.actions["capture"].isEnabled()


def test_capture_stores_the_pixels_shown_and_fills_the_gallery(window, gui_project, qtbot):
    project, source = gui_project
    window.player.seek(12)
    wait_frame(qtbot, window, 12)
    window.actions["capture"].trigger()
    frame = frame_repo.get_frame_at(project.conn, source.id, 12)
    assert frame is not None and frame.timestamp_s == pytest.approx(1.2)
    stored = cv2.imread(str(project.abspath(frame.image_path)))
    with open_media(source.path) as reader:
        assert np.array_equal(stored, reader.read(12))
    model = window.gallery.model
    assert model.rowCount() == 1 and model.rows[0].frame.id == frame.id
    assert window.gallery.view.currentIndex().row() == 0
    window.actions["capture"].trigger()              # idempotent
    assert frame_repo.count_frames(project.conn) == 1


def test_next_and_previous_annotated_frame(window, gui_project, qtbot):
    from gui_helpers import drag, view_point
    view = window.annotator.view
    for index in (5, 20):
        window.player.seek(index)
        wait_frame(qtbot, window, index)
        drag(view, view_point(view, 10, 10), view_point(view, 30, 30))
    window.player.seek(30)
    wait_frame(qtbot, window, 30)
    window.player.seek(2)
    wait_frame(qtbot, window, 2)
    window.actions["next_annotated"].trigger()
    wait_frame(qtbot, window, 5)
    window.actions["next_annotated"].trigger()
    wait_frame(qtbot, window, 20)
    window.actions["next_annotated"].trigger()          # none after 20: stays
    window.actions["prev_annotated"].trigger()
    wait_frame(qtbot, window, 5)
