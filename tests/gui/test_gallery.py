"""Gallery: one thumbnail per captured frame, lazy decoding, filters, open, delete."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest

from gui_helpers import wait_frame
from src.data.capture import capture_frames
from src.db import annotations as ann_repo
from src.db import frames as frame_repo
from src.db.records import Annotation
from src.gui import dialogs
from src.gui.gallery import PAGE

pytestmark = pytest.mark.gui


@pytest.fixture
def captured(gui_project):
    """Frames 0, 3, ..., 27 captured; frame 3 has a car box, frame 6 a person polygon."""
    project, source = gui_project
    frames = capture_frames(project, source, range(0, 30, 3))
    classes = {c.name: c.id for c in project_classes(project)}
    ann_repo.add_annotations(project.conn, [
        Annotation(frames[1].id, classes["car"], "box", [5, 5, 20, 20]),
        Annotation(frames[2].id, classes["person"], "polygon", [[5, 5], [20, 5], [10, 20]])])
    return project, source, frames


def project_classes(project):
    from src.db import classes as class_repo
    return class_repo.list_classes(project.conn)


def _wait_thumbnails(qtbot, gallery):
    qtbot.waitUntil(lambda: not gallery.model._loading and not gallery.model._wanted
                    and not gallery.model._dispatch_timer.isActive())


@pytest.fixture
def decode_log(monkeypatch):
    """Record, from before the window opens, each thumbnail request with whether its row was
    on screen at that moment (measured on the view itself), and each decode."""
    from src.gui.thumbnails import ThumbnailCache, ThumbnailLoader
    requests, decoded = [], []
    request, load = ThumbnailLoader.request, ThumbnailCache.load

    def recording_request(self, frame):
        gallery = self.parent()
        rect = gallery.view.visualRect(gallery.model.index(gallery.model.row_of[frame.id]))
        requests.append((frame.id, rect.intersects(gallery.view.viewport().rect())))
        request(self, frame)

    def recording_load(self, frame):
        decoded.append(frame.id)          # list.append is atomic: pool threads may call this
        return load(self, frame)
    monkeypatch.setattr(ThumbnailLoader, "request", recording_request)
    monkeypatch.setattr(ThumbnailCache, "load", recording_load)
    return requests, decoded


def test_one_thumbnail_per_captured_frame(captured, decode_log, window, qtbot):
    """Every visible row gets its thumbnail, decoded once; no row is decoded that was not on
    screen when it was asked for (under load the dock may settle after a first layout, so a
    row visible then may be hidden now: that decode was still for a visible row)."""
    project, _, frames = captured
    requests, decoded = decode_log
    gallery = window.gallery
    assert gallery.model.rowCount() == len(frames)
    _wait_thumbnails(qtbot, gallery)
    visible = [r for r in range(len(frames)) if gallery._row_visible(r)]
    assert visible                                        # the dock shows some
    assert [asked for asked in requests if not asked[1]] == []
    assert sorted(decoded) == sorted(set(decoded)) == sorted(f for f, _ in requests)
    assert len(decoded) < len(frames) or len(visible) == len(frames)
    for row in visible:
        frame = frames[row]
        assert frame.id in decoded and frame.id in gallery.model._images
        assert gallery.loader.cache.path_for(frame).is_file()      # cached on disk
    text = gallery.model.index(1).data()
    assert "#3" in text and "1 shapes" in text and "car" in text


def test_scrolling_decodes_only_visible_thumbnails(window, tmp_path, qtbot):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(PAGE + 60):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((24, 32, 3), i % 255, np.uint8))
    window.import_media(folder)
    gallery = window.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() >= PAGE, timeout=10000)
    _wait_thumbnails(qtbot, gallery)
    first = gallery.loader.cache.decodes
    assert 0 < first < 60
    gallery.view.scrollToBottom()
    qtbot.waitUntil(lambda: gallery.model.rowCount() == PAGE + 60)   # next page fetched lazily
    gallery.view.scrollToBottom()
    QTest.qWait(50)
    _wait_thumbnails(qtbot, gallery)
    visible_now = [r for r in range(gallery.model.rowCount()) if gallery._row_visible(r)]
    assert gallery.loader.cache.decodes <= first + len(visible_now)
    assert gallery.loader.cache.decodes < gallery.model.rowCount() // 2


def test_filters_by_class_and_unannotated(captured, window):
    project, _, frames = captured
    gallery = window.gallery
    person = [c for c in project_classes(project) if c.name == "person"][0]
    gallery.set_filter(class_id=person.id)
    assert [s.frame.id for s in gallery.model.rows] == [frames[2].id]
    gallery.set_filter(unannotated_only=True)
    assert {s.frame.id for s in gallery.model.rows} == {f.id for f in frames} - {frames[1].id,
                                                                                  frames[2].id}
    gallery.set_filter()
    assert gallery.model.rowCount() == len(frames)


def test_click_opens_the_frame_in_the_annotator(captured, window, qtbot):
    _, _, frames = captured
    gallery = window.gallery
    rect = gallery.view.visualRect(gallery.model.index(1))
    QTest.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, rect.center())
    wait_frame(qtbot, window, 3)
    assert window.annotator.frame.id == frames[1].id
    assert len(window.annotator.view.items_by_id) == 1


def test_delete_frames_after_confirmation(captured, window, monkeypatch):
    project, _, frames = captured
    gallery = window.gallery
    selection = gallery.view.selectionModel()
    for row in (1, 2):
        selection.select(gallery.model.index(row), selection.SelectionFlag.Select)
    images = [project.abspath(f.image_path).read_bytes() for f in frames]
    deleted_owners = [a.frame_id for a in ann_repo.list_annotations(project.conn)]
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: False)
    gallery.delete_selected()
    assert frame_repo.count_frames(project.conn) == len(frames)
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)
    gallery.delete_selected()
    assert frame_repo.count_frames(project.conn) == len(frames) - 2
    assert ann_repo.list_annotations(project.conn) == []
    assert not project.abspath(frames[1].image_path).exists()
    assert gallery.model.rowCount() == len(frames) - 2

    window.actions["undo"].trigger()          # rows, ids, annotations and images come back
    assert frame_repo.count_frames(project.conn) == len(frames)
    assert frame_repo.get_frame(project.conn, frames[1].id) == frames[1]
    assert [a.frame_id for a in ann_repo.list_annotations(project.conn)] == deleted_owners
    assert project.abspath(frames[1].image_path).read_bytes() == images[1]
    assert gallery.model.rowCount() == len(frames)
    window.actions["redo"].trigger()
    assert frame_repo.count_frames(project.conn) == len(frames) - 2
    assert not project.abspath(frames[2].image_path).exists()


def test_annotating_updates_the_gallery_counts(captured, window, qtbot):
    from gui_helpers import drag, view_point
    _, _, frames = captured
    window.player.seek(0)
    wait_frame(qtbot, window, 0)
    view = window.annotator.view
    drag(view, view_point(view, 10, 10), view_point(view, 40, 40))
    qtbot.waitUntil(lambda: window.gallery.model.rows[0].shape_count == 1)
    assert "1 shapes" in window.gallery.model.index(0).data()


def test_image_folder_import_runs_in_a_worker(window, tmp_path, qtbot):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((40, 60, 3), 40 * i, np.uint8))
    window.import_media(folder)   # a fast worker may finish before a waitSignal connects
    qtbot.waitUntil(lambda: window.player.source is not None
                    and window.player.source.kind == "images" and window.player.index == 0,
                    timeout=10000)
    assert window.gallery.model.rowCount() == 5
    assert window.annotator.frame is not None          # image folder frames are all captured


def test_import_error_is_shown(window, tmp_path, qtbot):
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"nope")
    from PyQt6.QtWidgets import QApplication

    def error_boxes():
        return [w for w in QApplication.topLevelWidgets() if w.objectName() == "errorDialog"
                and w.isVisible()]
    window.import_media(bad)      # it may fail before a waitSignal could connect: wait for the box
    qtbot.waitUntil(lambda: bool(error_boxes()), timeout=10000)
    boxes = error_boxes()
    assert boxes and str(bad.name) in (boxes[0].text() + boxes[0].informativeText())
