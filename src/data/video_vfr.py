"""Frame-exact access to variable-frame-rate videos, where OpenCV's seek is not exact.

OpenCV numbers frames by timestamp × average fps. In a variable-frame-rate video (phones
record these) a CAP_PROP_POS_FRAMES seek then lands on another frame than the N-th of a
sequential decode, and reports the index it was asked for, so the mistake cannot be seen
from OpenCV. When PyAV is installed, VideoReader asks `is_variable_frame_rate` and uses a
`PtsCapture` for such files: every frame is indexed by its timestamp (packets demuxed, not
decoded), a seek goes to the keyframe before the frame's timestamp and decodes forward to
exactly that timestamp. Frame N is then the N-th frame in presentation order.

PtsCapture offers the part of cv2.VideoCapture that VideoReader uses, so the reader's
stepping, grabbing and caching logic is the same for both. Like OpenCV it applies the
display rotation phones write (multiples of 90°; display-matrix flips are not applied).
"""
from __future__ import annotations

import bisect
from pathlib import Path

import cv2
import numpy as np

try:
    import av
except ImportError:  # PyAV is optional: without it VFR videos are read through OpenCV
    av = None

_RATE_TOLERANCE = 1e-3


def is_variable_frame_rate(path: Path) -> bool:
    """True when the stream's average rate differs from its base (tick) rate."""
    if av is None:
        return False
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            stream = container.streams.video[0]
            avg, base = stream.average_rate, stream.base_rate or stream.guessed_rate
    except (av.FFmpegError, OSError, ValueError):
        return False
    if not avg or not base:
        return False
    return abs(float(avg) - float(base)) > _RATE_TOLERANCE * float(base)


class PtsCapture:
    """A cv2.VideoCapture look-alike over PyAV that numbers frames by sorted timestamps."""

    def __init__(self, path: Path) -> None:
        self._container = av.open(str(path))
        try:
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self._pts, self._keyframes = self._index()
        except BaseException:
            self._container.close()
            raise
        self._index_of = {pts: i for i, pts in enumerate(self._pts)}
        self._pending = self._current = None
        self._pos = -1
        self._frames = iter(())
        self.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def isOpened(self) -> bool:
        return bool(self._pts)

    def timestamp(self, index: int) -> float:
        """Seconds from the first frame to frame `index`, from the stream's timestamps."""
        return float((self._pts[index] - self._pts[0]) * self._stream.time_base)

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            return float(self._pos)
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(len(self._pts))
        if prop == cv2.CAP_PROP_FPS:
            return float(self._stream.average_rate or 0)
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        if prop != cv2.CAP_PROP_POS_FRAMES:
            return False
        index = int(value)
        self._pending, self._pos = None, -1
        if 0 <= index < len(self._pts):
            self._seek_to(index)
        return True

    def grab(self) -> bool:
        frame, self._pending = self._pending or self._next_frame(), None
        if frame is None:
            return False
        self._current = frame
        self._pos = self._index_of.get(frame.pts, self._pos) + 1
        return True

    def retrieve(self, buffer: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        if self._current is None:
            return False, None
        image = self._current.to_ndarray(format="bgr24")
        turns = (getattr(self._current, "rotation", 0) or 0) // 90 % 4
        if turns:       # display rotation (phones), counter-clockwise, as OpenCV applies it
            image = np.ascontiguousarray(np.rot90(image, turns))
        if buffer is not None and buffer.shape == image.shape and buffer.dtype == image.dtype:
            np.copyto(buffer, image)
            image = buffer
        return True, image

    def read(self, buffer: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        if not self.grab():
            return False, None
        return self.retrieve(buffer)

    def release(self) -> None:
        self._container.close()

    def _index(self) -> tuple[list[int], list[int]]:
        """Timestamps of all frames (presentation order) and of the keyframes."""
        pts, keyframes = [], []
        for packet in self._container.demux(self._stream):
            if packet.size == 0:             # the flush packet at the end
                continue
            if packet.pts is None:
                raise ValueError("a packet without timestamp: cannot index by timestamp")
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
        return sorted(set(pts)), sorted(keyframes)

    def _seek_to(self, index: int) -> None:
        """Decode from the keyframe before frame `index` up to it; it becomes pending."""
        target = self._pts[index]
        k = bisect.bisect_right(self._keyframes, target) - 1
        start = self._keyframes[k] if k >= 0 else self._pts[0]
        self._container.seek(start, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        frame = self._next_frame()
        while frame is not None and (frame.pts is None or frame.pts < target):
            frame = self._next_frame()
        if frame is not None and frame.pts == target:
            self._pending, self._pos = frame, index

    def _next_frame(self):
        try:
            return next(self._frames, None)
        except (av.FFmpegError, ValueError):   # corrupt data: this frame cannot be decoded
            return None
