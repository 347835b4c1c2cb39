"""Synthetic media for the video/capture tests: every frame carries its own index.

Each frame shows its index twice: as text for people, and as a row of black/white squares
(INDEX_BITS bits) that survives lossy compression, so a test can tell which frame it got
without trusting the decoder under test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

INDEX_BITS = 10
_SQUARE = 8
_STEP = 9


def counter_frame(index: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A BGR frame whose content depends on `index` (moving shapes, so inter-frame coding
    has real work to do) with the index drawn as text and as a bit pattern."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = (40 + (index * 7) % 120, 60, 90 + (index * 3) % 100)
    x = (index * 5) % max(1, width - 30)
    cv2.rectangle(frame, (x, height - 40), (x + 25, height - 15), (0, 200, 255), -1)
    cv2.putText(frame, str(index), (4, height // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX,
                0.9, (255, 255, 255), 2)
    for bit in range(INDEX_BITS):
        value = 255 if (index >> bit) & 1 else 0
        x0 = 4 + bit * _STEP
        frame[4:4 + _SQUARE, x0:x0 + _SQUARE] = value
    return frame


def frame_number(frame: np.ndarray) -> int:
    """The index drawn into `frame` by counter_frame, read back from the bit squares."""
    index = 0
    for bit in range(INDEX_BITS):
        x0 = 4 + bit * _STEP
        patch = frame[6:2 + _SQUARE, x0 + 2:x0 + _SQUARE - 2]
        if patch.mean() > 127:
            index |= 1 << bit
    return index


def write_cv2_video(path: Path, n: int, fourcc: str, size=(160, 120), fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"this OpenCV build cannot write {fourcc} to {path.suffix}"
    for i in range(n):
        writer.write(counter_frame(i, *size))
    writer.release()
    return path


def write_h264_video(path: Path, n: int, gop: int, size=(160, 120), fps: int = 25) -> Path:
    """H.264 with B-frames and one keyframe every `gop` frames (no scene-cut keyframes)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3:b-adapt=0"}
        for i in range(n):
            image = av.VideoFrame.from_ndarray(counter_frame(i, *size), format="bgr24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return path


VFR_DURATIONS_MS = (40, 100)   # frames alternate stretches of 25 fps and 10 fps


def vfr_timestamps_ms(n: int) -> list[int]:
    """Presentation time of each frame of write_vfr_video: 20 frames at 40 ms, 20 at 100 ms..."""
    out, t = [], 0
    for i in range(n):
        out.append(t)
        t += VFR_DURATIONS_MS[(i // 20) % 2]
    return out


def write_vfr_video(path: Path, n: int, gop: int = 50, size=(160, 120), rotation: int = 0,
                    fixed_ms: int | None = None) -> Path:
    """H.264 with B-frames whose frame durations change every 20 frames (variable rate),
    or last `fixed_ms` each; `rotation`: display rotation, degrees counter-clockwise."""
    av = pytest.importorskip("av")
    from fractions import Fraction
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        stream.codec_context.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=2:b-adapt=0"}
        times = vfr_timestamps_ms(n) if fixed_ms is None else [i * fixed_ms for i in range(n)]
        for i, t in enumerate(times):
            image = av.VideoFrame.from_ndarray(counter_frame(i, *size), format="bgr24")
            image.pts, image.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return path


def sequential_decode(path: Path) -> list[np.ndarray]:
    """Raw OpenCV, frame after frame: the reference random access must match."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


@dataclass
class VideoFixture:
    path: Path
    frames: list[np.ndarray]   # sequential decode by raw OpenCV

    @property
    def count(self) -> int:
        return len(self.frames)


def _fixture(path: Path) -> VideoFixture:
    return VideoFixture(path, sequential_decode(path))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def h264_long_gop(media_dir) -> VideoFixture:
    """300 frames, keyframes at 0 and 250 only, B-frames."""
    return _fixture(write_h264_video(media_dir / "long_gop.mp4", 300, gop=250))


@pytest.fixture(scope="session")
def mp4v_video(media_dir) -> VideoFixture:
    """MPEG-4 Part 2 written by OpenCV itself (GOP 12), 120 frames."""
    return _fixture(write_cv2_video(media_dir / "mp4v.mp4", 120, "mp4v"))


@pytest.fixture(scope="session")
def mjpg_video(media_dir) -> VideoFixture:
    """Motion JPEG in AVI (every frame a keyframe), 60 frames."""
    return _fixture(write_cv2_video(media_dir / "mjpg.avi", 60, "MJPG"))


@pytest.fixture(scope="session")
def vfr_video(media_dir) -> VideoFixture:
    """150 frames at alternating 25/10 fps: OpenCV's frame numbering is off here."""
    return _fixture(write_vfr_video(media_dir / "vfr.mp4", 150))


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Five plain 8-bit BGR images named so that natural order differs from text order."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, name in enumerate(["img1.png", "img2.jpg", "img10.png", "img11.bmp", "img20.png"]):
        cv2.imwrite(str(folder / name), counter_frame(i, 96, 64))
    return folder
