"""Frame-accurate reading of videos and image folders (src/data/video.py)."""
from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.data.video import (BACKFILL_FRAMES, SHORT_JUMP, FrameCache, FrameIndexError,
                            ImageFolderReader, VideoReader, _natural_key, open_media,
                            probe_media)
from src.errors import MediaError
from tests.data.conftest import (counter_frame, frame_number, sequential_decode,
                                 vfr_timestamps_ms, write_cv2_video, write_vfr_video)

VIDEOS = ["h264_long_gop", "mp4v_video", "mjpg_video"]


class CountingCapture:
    """Wraps the reader's cv2.VideoCapture to count seeks and decodes."""

    def __init__(self, cap):
        self._cap = cap
        self.seeks = self.reads = self.grabs = 0

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_POS_FRAMES:
            self.seeks += 1
        return self._cap.set(prop, value)

    def read(self, *buffer):
        self.reads += 1
        return self._cap.read(*buffer)

    def grab(self):
        self.grabs += 1
        return self._cap.grab()

    def get(self, prop):
        return self._cap.get(prop)

    def release(self):
        self._cap.release()


def counting(reader: VideoReader) -> CountingCapture:
    reader._cap = CountingCapture(reader._cap)
    return reader._cap


# --- frame accuracy ------------------------------------------------------------------------

@pytest.mark.parametrize("name", VIDEOS)
def test_random_access_matches_sequential_decode(name, request):
    video = request.getfixturevalue(name)
    assert [frame_number(f) for f in video.frames] == list(range(video.count))
    order = list(range(video.count))
    random.Random(7).shuffle(order)
    with open_media(video.path) as reader:
        assert reader.frame_count == video.count
        for i in order[:80]:
            frame = reader.read(i)
            assert frame_number(frame) == i
            np.testing.assert_array_equal(frame, video.frames[i], err_msg=f"frame {i}")


def test_long_gop_fixture_really_has_a_long_gop_and_b_frames(h264_long_gop):
    av = pytest.importorskip("av")
    with av.open(str(h264_long_gop.path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes == [0, 250]
    assert any(p.pts < p.dts + 1 and p.pts != p.dts for p in packets) or \
        any(a.pts > b.pts for a, b in zip(packets, packets[1:])), "no reordered (B) frames"


def test_seek_deep_inside_a_gop_is_exact(h264_long_gop):
    """Frame 240 is 240 frames after the previous keyframe: the seek must decode forward."""
    with open_media(h264_long_gop.path) as reader:
        for i in (240, 249, 250, 251, 120, 299):
            frame = reader.read(i)
            assert frame_number(frame) == i
            np.testing.assert_array_equal(frame, h264_long_gop.frames[i])


def test_forward_backward_and_revisit_give_the_same_pixels(mp4v_video):
    with open_media(mp4v_video.path) as reader:
        forward = [reader.read(i) for i in range(40)]
        backward = [reader.read(i) for i in range(39, -1, -1)]
        for i in range(40):
            np.testing.assert_array_equal(forward[i], backward[39 - i])
            np.testing.assert_array_equal(forward[i], mp4v_video.frames[i])


def test_opencv_seeks_are_wrong_on_a_variable_frame_rate_video(vfr_video):
    """Why the VFR path exists: raw CAP_PROP_POS_FRAMES lands on another frame here."""
    assert [frame_number(f) for f in vfr_video.frames] == list(range(150))
    cap = cv2.VideoCapture(str(vfr_video.path), cv2.CAP_FFMPEG)
    landed = []
    for i in (30, 90, 120):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        landed.append(frame_number(frame) if ok else None)
    cap.release()
    assert landed != [30, 90, 120]


def test_variable_frame_rate_video_is_frame_exact(vfr_video):
    order = list(range(vfr_video.count))
    random.Random(3).shuffle(order)
    with open_media(vfr_video.path) as reader:
        assert reader.variable_frame_rate
        assert reader.frame_count == 150
        forward = [reader.read(i) for i in range(vfr_video.count)]
    with open_media(vfr_video.path) as reader:
        for i in order[:60] + [149, 148, 0]:
            frame = reader.read(i)
            assert frame_number(frame) == i
            np.testing.assert_array_equal(frame, forward[i], err_msg=f"frame {i}")


def test_variable_frame_rate_timestamps_are_the_frames_own(vfr_video):
    expected = vfr_timestamps_ms(150)
    with open_media(vfr_video.path) as reader:
        for i in (0, 1, 19, 20, 21, 40, 149):
            assert reader.timestamp(i) == pytest.approx(expected[i] / 1000, abs=1e-3)


@pytest.mark.parametrize("variable", [True, False])
def test_display_rotation_is_applied_like_opencv_does(tmp_path, variable):
    """A phone video shot upright: both decoders turn it 90° counter-clockwise."""
    path = write_vfr_video(tmp_path / "rotated.mp4", 30, rotation=90,
                           fixed_ms=None if variable else 40)
    with open_media(path) as reader:
        assert reader.variable_frame_rate == variable
        assert (reader.width, reader.height) == (120, 160)
        for i in (0, 17, 29, 5):
            frame = reader.read(i)
            assert frame.shape == (160, 120, 3)
            assert frame_number(np.rot90(frame, -1)) == i


# --- decoding strategy -------------------------------------------------------------------

def test_forward_steps_never_seek(h264_long_gop):
    with VideoReader(h264_long_gop.path) as reader:
        reader.read(100)
        cap = counting(reader)
        for i in range(101, 160):
            assert frame_number(reader.read(i)) == i
        assert cap.seeks == 0
        assert cap.reads == 59


def test_short_forward_jump_grabs_instead_of_seeking(h264_long_gop):
    with VideoReader(h264_long_gop.path) as reader:
        reader.read(100)
        cap = counting(reader)
        assert frame_number(reader.read(100 + SHORT_JUMP)) == 100 + SHORT_JUMP
        assert (cap.seeks, cap.grabs, cap.reads) == (0, SHORT_JUMP - 1, 1)
        reader.read(200)                       # a long jump seeks
        assert cap.seeks == 1


def test_steps_back_over_recent_frames_come_from_the_cache(mp4v_video):
    with VideoReader(mp4v_video.path) as reader:
        for i in range(60):
            reader.read(i)
        cap = counting(reader)
        for i in range(58, 9, -1):
            assert frame_number(reader.read(i)) == i
        assert (cap.seeks, cap.reads, cap.grabs) == (0, 0, 0)


def test_step_back_after_a_seek_refills_a_window_with_one_seek(h264_long_gop):
    with VideoReader(h264_long_gop.path) as reader:
        reader.read(200)
        cap = counting(reader)
        for i in range(199, 199 - BACKFILL_FRAMES, -1):
            frame = reader.read(i)
            assert frame_number(frame) == i
            np.testing.assert_array_equal(frame, h264_long_gop.frames[i])
        assert cap.seeks == 1


def test_stepping_back_past_the_cached_frames_refills_the_cache(mp4v_video):
    frame_bytes = 160 * 120 * 3
    with VideoReader(mp4v_video.path, cache_bytes=20 * frame_bytes) as reader:
        for i in range(60):                        # the cache keeps 40..59
            reader.read(i)
        for i in range(59, 39, -1):
            reader.read(i)
        cap = counting(reader)
        for i in range(39, 29, -1):                # 39 misses: one seek refills 30..39
            np.testing.assert_array_equal(reader.read(i), mp4v_video.frames[i])
        assert cap.seeks == 1


def test_read_returns_a_read_only_frame_the_caller_copies_to_draw_on(mjpg_video):
    with open_media(mjpg_video.path) as reader:
        frame = reader.read(5)
        with pytest.raises(ValueError, match="read-only"):
            frame[:] = 0
        drawn = frame.copy()
        drawn[:] = 0
        np.testing.assert_array_equal(reader.read(5), mjpg_video.frames[5])


@pytest.mark.parametrize("cache_frames", [0, 3])
def test_a_frame_the_caller_holds_is_never_overwritten(mp4v_video, cache_frames):
    """Evicted buffers are reused for decodes, but not while a caller holds any array of
    them (a slice of a frame included): the GUI keeps its current frame for a capture."""
    frame_bytes = 160 * 120 * 3
    with VideoReader(mp4v_video.path, cache_bytes=cache_frames * frame_bytes) as reader:
        held = reader.read(2)
        corner = reader.read(3)[:10, :10]
        for i in range(4, 40):
            reader.read(i)
        np.testing.assert_array_equal(held, mp4v_video.frames[2])
        np.testing.assert_array_equal(corner, mp4v_video.frames[3][:10, :10])


def test_decodes_take_prefaulted_buffers_while_the_cache_fills(mp4v_video):
    frame_bytes = 160 * 120 * 3
    with VideoReader(mp4v_video.path, cache_bytes=40 * frame_bytes) as reader:
        pool = reader._prefaulted
        deadline = time.monotonic() + 10
        while len(pool.ready()) < pool.ahead and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = {a.__array_interface__["data"][0] for a in pool.ready()}
        assert len(ready) == pool.ahead
        for i in range(1, 4):
            np.testing.assert_array_equal(reader.read(i), mp4v_video.frames[i])
        used = {reader.cache.get(i).__array_interface__["data"][0] for i in range(1, 4)}
        assert used <= ready                      # each decode landed in a touched buffer
        thread = pool._thread
    assert not thread.is_alive()                  # close() stops the prefault thread


def test_one_off_readers_start_no_prefault_thread(mp4v_video):
    with VideoReader(mp4v_video.path, cache_bytes=0) as reader:
        assert reader._prefaulted is None


def test_reader_is_safe_to_share_between_threads(mp4v_video):
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for _ in range(25):
                i = rng.randrange(mp4v_video.count)
                if not np.array_equal(reader.read(i), mp4v_video.frames[i]):
                    errors.append(i)
        except Exception as exc:  # surfaced below, not swallowed
            errors.append(exc)

    with open_media(mp4v_video.path) as reader:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


# --- cache -------------------------------------------------------------------------------

def test_frame_cache_is_lru_and_bounded_in_bytes():
    frame = np.zeros((10, 10, 3), np.uint8)           # 300 bytes
    cache = FrameCache(max_bytes=3 * frame.nbytes)
    for i in range(3):
        cache.put(i, frame.copy())
    assert cache.get(0) is not None                    # 0 is now the most recent
    cache.put(3, frame.copy())                         # evicts 1, the least recent
    assert 1 not in cache and {0, 2, 3} <= {i for i in range(4) if i in cache}
    assert cache.nbytes == 3 * frame.nbytes
    cache.put(9, np.zeros((20, 20, 3), np.uint8))      # larger than the whole budget
    assert 9 not in cache and len(cache) == 3


def test_reader_cache_stays_within_its_byte_budget(mp4v_video):
    frame_bytes = 160 * 120 * 3
    with VideoReader(mp4v_video.path, cache_bytes=10 * frame_bytes) as reader:
        for i in list(range(50)) + [100, 3, 70, 20]:
            np.testing.assert_array_equal(reader.read(i), mp4v_video.frames[i])
        assert len(reader.cache) == 10
        assert reader.cache.nbytes <= 10 * frame_bytes
        assert all(i in reader.cache for i in (100, 3, 70, 20, 49, 48))


def test_evicted_buffers_are_reused_without_corrupting_cached_frames(mp4v_video):
    """Decoding into recycled memory must never overwrite a frame still in the cache."""
    frame_bytes = 160 * 120 * 3
    with VideoReader(mp4v_video.path, cache_bytes=6 * frame_bytes) as reader:
        for i in range(40):
            reader.read(i)
        cached = {i: reader.cache.get(i) for i in range(34, 40)}
        addresses = {a.__array_interface__["data"][0] for a in cached.values()}
        spare = {a.__array_interface__["data"][0] for a in reader._spare}
        assert spare and not spare & addresses
        for i in range(40, 46):                      # decodes reuse the spare buffers
            reader.read(i)
        reused = {reader.cache.get(i).__array_interface__["data"][0] for i in range(40, 46)}
        assert reused & spare
        for i in range(40, 46):
            np.testing.assert_array_equal(reader.read(i), mp4v_video.frames[i])


# --- frame count -------------------------------------------------------------------------

def test_frame_count_of_a_truncated_file_is_what_can_be_decoded(tmp_path):
    full = write_cv2_video(tmp_path / "full.avi", 100, "MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    reported = cv2.VideoCapture(str(cut), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FRAME_COUNT)
    decodable = sequential_decode(cut)
    assert reported > len(decodable) > 0           # the header lies
    with open_media(cut) as reader:
        assert reader.frame_count == len(decodable)
        last = reader.frame_count - 1
        assert frame_number(reader.read(last)) == last
        with pytest.raises(FrameIndexError):
            reader.read(last + 1)


@pytest.mark.parametrize("name", VIDEOS)
def test_header_frame_count_is_kept_when_right(name, request):
    video = request.getfixturevalue(name)
    with open_media(video.path) as reader:
        assert reader.frame_count == video.count
        assert (reader.width, reader.height) == (160, 120)
        assert reader.fps == pytest.approx(25.0)
        assert not reader.variable_frame_rate        # OpenCV decodes constant-rate video


# --- indices and timestamps ----------------------------------------------------------------

def test_out_of_range_index_names_index_and_range(mjpg_video):
    with open_media(mjpg_video.path) as reader:
        for bad in (-1, 60, 1000):
            with pytest.raises(FrameIndexError) as info:
                reader.read(bad)
            assert isinstance(info.value, IndexError) and isinstance(info.value, MediaError)
            assert str(bad) in str(info.value) and "0..59" in str(info.value)
            assert str(mjpg_video.path) in str(info.value)


def test_timestamps(mjpg_video, image_folder):
    with open_media(mjpg_video.path) as reader:
        assert reader.timestamp(0) == 0.0
        assert reader.timestamp(50) == pytest.approx(2.0)
    with open_media(image_folder) as reader:
        assert reader.timestamp(3) is None


# --- image folders -----------------------------------------------------------------------

def test_image_folder_is_read_in_natural_order(image_folder):
    (image_folder / "notes.txt").write_text("not an image")
    (image_folder / ".hidden.png").write_bytes(b"junk")
    (image_folder / "sub").mkdir()
    with open_media(image_folder) as reader:
        assert isinstance(reader, ImageFolderReader)
        assert [f.name for f in reader.files] == [
            "img1.png", "img2.jpg", "img10.png", "img11.bmp", "img20.png"]
        assert reader.frame_count == 5 and reader.fps is None
        assert (reader.width, reader.height) == (96, 64)
        assert [frame_number(reader.read(i)) for i in range(5)] == list(range(5))


def test_image_folder_decodes_grey_alpha_and_16_bit_as_bgr(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    bgr = counter_frame(3, 96, 64)
    cv2.imwrite(str(folder / "a_grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "b_alpha.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "c_16bit.png"), bgr.astype(np.uint16) * 257)
    with open_media(folder) as reader:
        for i in range(3):
            frame = reader.read(i)
            assert frame.dtype == np.uint8 and frame.shape == (64, 96, 3)
            assert frame_number(frame) == 3
        np.testing.assert_array_equal(reader.read(1), bgr)
        np.testing.assert_array_equal(reader.read(2), bgr)


def test_corrupt_image_in_a_folder_names_the_file(image_folder):
    bad = image_folder / "img15.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with open_media(image_folder) as reader:
        index = [f.name for f in reader.files].index("img15.png")
        with pytest.raises(MediaError) as info:
            reader.read(index)
        assert str(bad) in str(info.value) and info.value.hint


def test_truncated_jpeg_is_reported(image_folder):
    data = (image_folder / "img2.jpg").read_bytes()
    (image_folder / "img2.jpg").write_bytes(data[:len(data) // 2])
    with open_media(image_folder) as reader, pytest.raises(MediaError, match="truncated"):
        reader.read(1)


# --- errors ------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(MediaError, match="no such file") as info:
        open_media(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(info.value)


def test_file_that_is_not_a_video(tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is text, not a video")
    with pytest.raises(MediaError, match="not a video") as info:
        open_media(fake)
    assert str(fake) in str(info.value) and info.value.hint


def test_zero_frame_video(tmp_path):
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (160, 120))
    writer.release()
    with pytest.raises(MediaError, match="no frames") as info:
        open_media(path)
    assert str(path) in str(info.value)


def test_single_image_is_refused_with_a_hint(image_folder):
    with pytest.raises(MediaError, match="single image") as info:
        open_media(image_folder / "img1.png")
    assert "folder" in info.value.hint


def test_folder_without_supported_images(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    (folder / "b.gif").write_bytes(b"GIF89a")
    with pytest.raises(MediaError, match="no supported images") as info:
        open_media(folder)
    assert ".png" in info.value.hint and "2 other files" in str(info.value)


def test_unreadable_file(mjpg_video, tmp_path, monkeypatch):
    path = tmp_path / "locked.avi"
    path.write_bytes(mjpg_video.path.read_bytes())
    path.chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # root reads whatever the mode says
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path
                            else real_access(p, mode))
    with pytest.raises(MediaError, match="permission denied") as info:
        open_media(path)
    assert str(path) in str(info.value) and "chmod" in info.value.hint


# --- probe -------------------------------------------------------------------------------

def test_probe_video(mjpg_video):
    record = probe_media(mjpg_video.path)
    assert record.kind == "video" and record.id is None
    assert record.path == str(mjpg_video.path.resolve()) and record.name == "mjpg.avi"
    assert record.sha256 == hashlib.sha256(mjpg_video.path.read_bytes()).hexdigest()
    assert record.size_bytes == mjpg_video.path.stat().st_size
    assert (record.frame_count, record.width, record.height) == (60, 160, 120)
    assert record.fps == pytest.approx(25.0)


def test_probe_image_folder(image_folder):
    record = probe_media(image_folder)
    assert record.kind == "images" and record.fps is None
    assert (record.frame_count, record.width, record.height) == (5, 96, 64)
    assert record.size_bytes == sum(f.stat().st_size for f in image_folder.iterdir())
    cv2.imwrite(str(image_folder / "img30.png"), counter_frame(9, 96, 64))
    assert probe_media(image_folder).sha256 != record.sha256


# --- architecture ------------------------------------------------------------------------

def test_a_seek_that_lands_elsewhere_falls_back_to_decoding_from_the_start(mp4v_video):
    """Some files (variable frame rate, odd timestamps) make OpenCV land near, not on, the
    frame asked for; the reader notices and decodes sequentially instead."""

    class InaccurateSeek(CountingCapture):
        def set(self, prop, value):
            if prop == cv2.CAP_PROP_POS_FRAMES:
                value = max(0, value - 3)
            return super().set(prop, value)

    with VideoReader(mp4v_video.path) as reader:
        reader._cap = InaccurateSeek(reader._cap)
        for i in (90, 40, 100):
            frame = reader.read(i)
            assert frame_number(frame) == i
            np.testing.assert_array_equal(frame, mp4v_video.frames[i])


# --- properties --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 12),
                          st.integers(1, 40)), max_size=60),
       st.integers(0, 120))
def test_frame_cache_matches_an_lru_model(ops, budget):
    evicted = []
    cache = FrameCache(max_bytes=budget, on_evict=evicted.append)
    model: dict[int, int] = {}                      # index -> nbytes, in recency order
    for op, index, size in ops:
        if op == "get":
            assert (cache.get(index) is not None) == (index in model)
            if index in model:
                model[index] = model.pop(index)
            continue
        cache.put(index, np.zeros(size, np.uint8))
        model.pop(index, None)
        if size <= budget:
            model[index] = size
            while sum(model.values()) > budget:
                del model[next(iter(model))]
        assert [i for i in range(13) if i in cache] == sorted(model)
        assert cache.nbytes == sum(model.values()) <= budget
    live = sum(1 for op, _, size in ops if op == "put")
    assert len(evicted) + len(cache) == live


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30, unique=True))
def test_image_files_sort_by_number_not_text(numbers):
    folder_names = [f"frame{n}.png" for n in numbers]
    ordered = sorted((Path(name) for name in folder_names), key=_natural_key)
    assert [int(p.stem[5:]) for p in ordered] == sorted(numbers)
