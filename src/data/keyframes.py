"""Keyframe images of a video, for scrubbing: what a player shows while the slider moves.

An exact frame of an inter-coded video costs a seek to the keyframe before it plus decoding
forward to it (tens to hundreds of ms for 720p H.264). A keyframe alone costs one seek and
one decode. `KeyframePreviews` indexes the keyframes by demuxing packets (no decoding) and
decodes the one nearest a frame on demand, keeping the last few in memory. Headless: no Qt.
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from pathlib import Path

import numpy as np

try:
    import av
except ImportError:  # PyAV is optional: without it scrubbing shows cached frames only
    av = None

DEFAULT_KEEP = 24          # decoded keyframes kept (a 720p frame is 2.7 MB)


class KeyframePreviews:
    """Frame index -> nearest keyframe index and its BGR image."""

    def __init__(self, path: str | Path, keep: int = DEFAULT_KEEP) -> None:
        self._container = av.open(str(path))
        try:
            self._stream = self._container.streams.video[0]
            pts, keyframes = _index_packets(self._container, self._stream)
        except BaseException:
            self._container.close()
            raise
        self._pts = pts
        # Frame index (presentation order) of each keyframe, ascending.
        self.keyframe_indices = sorted(bisect.bisect_left(pts, k) for k in keyframes)
        self._keep = keep
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self.seeks = 0                  # container seeks made (the benchmark reports them)

    @classmethod
    def open(cls, path: str | Path) -> "KeyframePreviews | None":
        """Previews for a video, or None when PyAV is missing or cannot index the file."""
        if av is None:
            return None
        try:
            previews = cls(path)
        except Exception:  # noqa: BLE001 - any PyAV failure: scrubbing uses cached frames
            return None
        if not previews.keyframe_indices:
            previews.close()
            return None
        return previews

    @property
    def frame_count(self) -> int:
        return len(self._pts)

    def nearest(self, index: int) -> int:
        """The keyframe index closest to frame `index` (either side)."""
        keys = self.keyframe_indices
        k = bisect.bisect_right(keys, index)
        candidates = keys[max(0, k - 1):k + 1]
        return min(candidates, key=lambda key: (abs(key - index), key))

    def image(self, key_index: int) -> np.ndarray | None:
        """The keyframe's BGR image (decoded once, then kept), None if it cannot be decoded."""
        image = self._images.get(key_index)
        if image is not None:
            self._images.move_to_end(key_index)
            return image
        image = self._decode(self._pts[key_index])
        if image is not None:
            self._images[key_index] = image
            while len(self._images) > self._keep:
                self._images.popitem(last=False)
        return image

    def _decode(self, pts: int) -> np.ndarray | None:
        self.seeks += 1
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        try:
            for frame in self._container.decode(self._stream):
                if frame.pts is not None and frame.pts >= pts:
                    return _bgr(frame)
        except (av.FFmpegError, ValueError):
            return None
        return None

    def close(self) -> None:
        self._images.clear()
        self._container.close()


def _index_packets(container, stream) -> tuple[list[int], list[int]]:
    """Timestamps of all frames (presentation order) and of the keyframes, from packets."""
    pts, keyframes = [], []
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    return sorted(set(pts)), sorted(set(keyframes))


def _bgr(frame) -> np.ndarray:
    image = frame.to_ndarray(format="bgr24")
    turns = (getattr(frame, "rotation", 0) or 0) // 90 % 4
    if turns:       # display rotation (phones), as OpenCV and src/data/video_vfr.py apply it
        image = np.ascontiguousarray(np.rot90(image, turns))
    return image
