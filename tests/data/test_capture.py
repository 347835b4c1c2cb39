"""Importing media and capturing frames into a project (src/data/capture.py)."""
from __future__ import annotations

import errno
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from src.data.capture import capture_array, capture_frames, frame_image_path, import_media
from src.data.video import FrameIndexError, open_media
from src.db import frames as frames_db
from src.db import sources as sources_db
from src.errors import MediaError
from tests.data.conftest import counter_frame, frame_number, vfr_timestamps_ms


def project_files(project) -> list[str]:
    """Everything under frames/, hidden temp files included."""
    if not project.frames_dir.exists():
        return []
    return sorted(str(p.relative_to(project.frames_dir)) for p in project.frames_dir.rglob("*"))


def assert_nothing_written(project) -> None:
    assert sources_db.list_sources(project.conn) == []
    assert frames_db.count_frames(project.conn) == 0
    assert project_files(project) == []


# --- videos --------------------------------------------------------------------------------

def test_import_video_registers_it_without_frames(project, mp4v_video):
    source, frames = import_media(project, mp4v_video.path)
    assert frames == [] and source.id is not None
    assert (source.kind, source.name, source.frame_count) == ("video", "mp4v.mp4", 120)
    assert sources_db.get_source(project.conn, source.id) == source
    assert project_files(project) == []


def test_reimporting_the_same_path_is_idempotent(project, mp4v_video):
    first, _ = import_media(project, mp4v_video.path)
    relative = os.path.relpath(mp4v_video.path)
    again, frames = import_media(project, relative)
    assert again == first and frames == []
    assert len(sources_db.list_sources(project.conn)) == 1


def test_capture_writes_lossless_pngs_and_rows(project, h264_long_gop):
    source, _ = import_media(project, h264_long_gop.path)
    frames = capture_frames(project, source, [260, 3, 120])
    assert [f.frame_index for f in frames] == [260, 3, 120]
    for frame in frames:
        path = project.abspath(frame.image_path)
        assert path == frame_image_path(project, source.id, frame.frame_index)
        assert frame.image_path == f"frames/{source.id}/{frame.frame_index:06d}.png"
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(stored, h264_long_gop.frames[frame.frame_index])
        assert (frame.width, frame.height) == (160, 120)
        assert frame.timestamp_s == pytest.approx(frame.frame_index / 25.0)
        assert frames_db.get_frame_at(project.conn, source.id, frame.frame_index) == frame
    assert not [p for p in project_files(project) if ".tmp" in p]


def test_capturing_a_frame_twice_rewrites_nothing(project, mp4v_video, tmp_path):
    video = tmp_path / "copy.mp4"
    video.write_bytes(mp4v_video.path.read_bytes())
    source, _ = import_media(project, video)
    first = capture_frames(project, source, [10, 11])
    path = project.abspath(first[0].image_path)
    before = path.stat()
    again = capture_frames(project, source, [11, 10, 10])
    assert again == [first[1], first[0], first[0]]
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert frames_db.count_frames(project.conn) == 2
    video.unlink()                        # nothing left to decode: the video is not opened
    assert capture_frames(project, source, [10, 11]) == first


def test_capture_with_the_callers_reader(project, mjpg_video):
    source, _ = import_media(project, mjpg_video.path)
    with open_media(mjpg_video.path) as reader:
        frames = capture_frames(project, source, range(5, 10), reader=reader)
        assert reader.read(7) is not None          # still open: capture did not close it
    assert [frame_number(cv2.imread(str(project.abspath(f.image_path)))) for f in frames] == \
        list(range(5, 10))


def test_capture_out_of_range_writes_nothing(project, mjpg_video):
    source, _ = import_media(project, mjpg_video.path)
    with pytest.raises(FrameIndexError, match="60"):
        capture_frames(project, source, [1, 60])
    assert frames_db.count_frames(project.conn) == 0 and project_files(project) == []


def test_capture_of_a_variable_frame_rate_video_records_exact_times(project, vfr_video):
    source, _ = import_media(project, vfr_video.path)
    frames = capture_frames(project, source, [25, 140])
    expected = vfr_timestamps_ms(150)
    for frame in frames:
        assert frame.timestamp_s == pytest.approx(expected[frame.frame_index] / 1000, abs=1e-3)
        image = cv2.imread(str(project.abspath(frame.image_path)))
        assert frame_number(image) == frame.frame_index
    with open_media(vfr_video.path) as reader:
        image = reader.read(60)
        frame = capture_array(project, source, 60, image, timestamp_s=reader.timestamp(60))
    assert frame.timestamp_s == pytest.approx(expected[60] / 1000, abs=1e-3)


def test_capture_array_stores_the_given_pixels(project, mjpg_video):
    source, _ = import_media(project, mjpg_video.path)
    image = counter_frame(33, 160, 120)
    frame = capture_array(project, source, 33, image)
    np.testing.assert_array_equal(cv2.imread(str(project.abspath(frame.image_path))), image)
    assert frame.timestamp_s == pytest.approx(33 / 25.0)
    assert capture_array(project, source, 33, np.zeros_like(image)) == frame   # idempotent
    np.testing.assert_array_equal(cv2.imread(str(project.abspath(frame.image_path))), image)


def test_capture_array_refuses_wrong_images(project, mjpg_video):
    source, _ = import_media(project, mjpg_video.path)
    with pytest.raises(ValueError, match="80x60"):
        capture_array(project, source, 0, np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(ValueError, match="BGR uint8"):
        capture_array(project, source, 0, np.zeros((120, 160), np.uint8))
    with pytest.raises(FrameIndexError):
        capture_array(project, source, 99, np.zeros((120, 160, 3), np.uint8))
    assert frames_db.count_frames(project.conn) == 0


def test_a_failed_row_insert_leaves_no_file(project, mjpg_video, monkeypatch):
    source, _ = import_media(project, mjpg_video.path)

    def broken(conn, frame):
        raise RuntimeError("disk full")

    monkeypatch.setattr(frames_db, "add_frame", broken)
    with pytest.raises(RuntimeError):
        capture_frames(project, source, [4])
    assert not frame_image_path(project, source.id, 4).exists()
    assert frames_db.count_frames(project.conn) == 0


# --- image folders -------------------------------------------------------------------------

def test_import_image_folder_hard_links_every_image(project, image_folder):
    source, frames = import_media(project, image_folder)
    assert (source.kind, source.frame_count, source.fps) == ("images", 5, None)
    originals = ["img1.png", "img2.jpg", "img10.png", "img11.bmp", "img20.png"]
    assert [f.frame_index for f in frames] == list(range(5))
    for frame, name in zip(frames, originals):
        stored = project.abspath(frame.image_path)
        assert stored.suffix == os.path.splitext(name)[1]
        assert os.path.samefile(stored, image_folder / name)     # a hard link, not a copy
        assert (frame.width, frame.height) == (96, 64) and frame.timestamp_s is None
    assert frames_db.list_frames(project.conn, source.id) == frames
    assert not [p for p in project_files(project) if p.startswith(".")]


def test_reimporting_a_folder_returns_the_same_frames(project, image_folder):
    source, frames = import_media(project, image_folder)
    again, frames_again = import_media(project, image_folder)
    assert again == source and frames_again == frames
    assert frames_db.count_frames(project.conn) == 5


def test_images_are_copied_when_they_cannot_be_linked(project, image_folder, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    _, frames = import_media(project, image_folder)
    first = project.abspath(frames[0].image_path)
    assert not os.path.samefile(first, image_folder / "img1.png")
    assert first.read_bytes() == (image_folder / "img1.png").read_bytes()


def test_odd_images_are_stored_as_the_bgr_png_the_reader_sees(project, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    bgr = counter_frame(5, 96, 64)
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "b.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "c.tif"), bgr.astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6                                             # rotate 90° clockwise
    Image.fromarray(bgr[:, :, ::-1]).save(folder / "d.jpg", exif=exif, quality=95)
    source, frames = import_media(project, folder)
    with open_media(folder) as reader:
        for frame in frames:
            stored = project.abspath(frame.image_path)
            assert stored.suffix == ".png"
            image = cv2.imread(str(stored), cv2.IMREAD_UNCHANGED)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            np.testing.assert_array_equal(image, reader.read(frame.frame_index))
            assert (frame.width, frame.height) == (image.shape[1], image.shape[0])
    assert (frames[3].width, frames[3].height) == (64, 96)       # EXIF rotation applied


def test_corrupt_image_fails_the_import_and_writes_nothing(project, image_folder):
    bad = image_folder / "img3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(MediaError) as info:
        import_media(project, image_folder)
    assert str(bad) in str(info.value)
    assert_nothing_written(project)


def test_a_failure_while_registering_frames_rolls_files_and_rows_back(project, image_folder,
                                                                      monkeypatch):
    real_add = frames_db.add_source_frames

    def failing_add(conn, source_id, frames):
        real_add(conn, source_id, frames)        # the rows are in: the rollback must undo them
        raise RuntimeError("simulated crash mid-import")

    monkeypatch.setattr(frames_db, "add_source_frames", failing_add)
    with pytest.raises(RuntimeError):
        import_media(project, image_folder)
    assert_nothing_written(project)


def test_stale_frames_folder_of_a_deleted_source_is_replaced(project, image_folder, tmp_path):
    source, _ = import_media(project, image_folder)
    sources_db.delete_source(project.conn, source.id)     # rows gone, files left behind
    (project.frames_dir / str(source.id) / "999999.png").write_bytes(b"stale")
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "x.png"), counter_frame(7, 96, 64))
    new, frames = import_media(project, other)
    folder = project.frames_dir / str(new.id)
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png"]
    assert frame_number(cv2.imread(str(project.abspath(frames[0].image_path)))) == 7


def test_stale_frames_of_a_deleted_video_source_are_removed(project, mjpg_video, mp4v_video):
    source, _ = import_media(project, mjpg_video.path)
    capture_frames(project, source, [1, 2])
    sources_db.delete_source(project.conn, source.id)
    new, _ = import_media(project, mp4v_video.path)
    assert new.id == source.id                             # SQLite reused the id
    assert not (project.frames_dir / str(new.id)).exists()
    frame = capture_frames(project, new, [1])[0]
    assert frame_number(cv2.imread(str(project.abspath(frame.image_path)))) == 1
    assert sorted(p.name for p in (project.frames_dir / str(new.id)).iterdir()) == ["000001.png"]


def test_capture_frames_restores_a_deleted_image_frame(project, image_folder):
    source, frames = import_media(project, image_folder)
    frames_db.delete_frames(project.conn, [frames[2].id])
    again = capture_frames(project, source, [2])[0]
    assert again.id != frames[2].id
    assert os.path.samefile(project.abspath(again.image_path), image_folder / "img10.png")


# --- inputs that must write nothing ----------------------------------------------------------

def test_bad_inputs_write_nothing(project, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    empty_video = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty_video), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25,
                    (160, 120)).release()
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), counter_frame(1, 96, 64))
    for bad in (text, empty_video, empty_folder, image, tmp_path / "missing.mp4"):
        with pytest.raises(MediaError) as info:
            import_media(project, bad)
        assert bad.name in str(info.value) and info.value.hint
        assert_nothing_written(project)
