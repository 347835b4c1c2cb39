"""Frame decoding off the GUI thread.

The DecodeWorker lives in its own QThread and owns the MediaReader. Requests are coalesced:
only the latest index asked for is decoded, so dragging the slider or playing a video that
decodes slower than its fps never builds a backlog. While the slider is dragged the worker
answers previews instead: the nearest frame already decoded (the reader's cache) or the
nearest keyframe (decoded alone, src/data/keyframes.py), whichever is closer; the exact
frame is decoded once the slider is released. The image is converted to a QImage in
the worker (QImage, unlike QPixmap, may be built outside the GUI thread).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QImage

from src.data.keyframes import KeyframePreviews
from src.data.video import MediaReader, VideoReader, open_media
from src.errors import LabelLoopError


def to_qimage(bgr: np.ndarray) -> QImage:
    """BGR uint8 -> a QImage owning its pixels (RGB32 converts to a pixmap without work)."""
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    h, w = bgra.shape[:2]
    return QImage(bgra.data, w, h, bgra.strides[0], QImage.Format.Format_RGB32).copy()


class DecodeWorker(QObject):
    opened = pyqtSignal(int, object)                 # generation, MediaReader info dict
    # generation, index, BGR array, image, timestamp in seconds (the decoder's, None if unknown)
    frame_decoded = pyqtSignal(int, int, object, QImage, object)
    # generation, index asked for, index shown, image (a nearby keyframe or cached frame)
    preview_decoded = pyqtSignal(int, int, int, QImage)
    failed = pyqtSignal(int, object)                 # generation, exception
    _wake = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._open: tuple[int, Path] | None = None
        self._index: tuple[int, int] | None = None
        self._preview: tuple[int, int] | None = None
        self.reader: MediaReader | None = None
        self.keyframes: KeyframePreviews | None = None
        self._key_images: OrderedDict[int, QImage] = OrderedDict()  # keyframes, converted
        self._index_keyframes = False       # build the keyframe index when next idle
        self._wake.connect(self._process)

    # Called from the GUI thread.
    def request_open(self, generation: int, path: Path) -> None:
        with self._lock:
            self._open, self._index = (generation, path), None
        self._wake.emit()

    def request_frame(self, generation: int, index: int) -> None:
        with self._lock:
            self._index, self._preview = (generation, index), None
        self._wake.emit()

    def request_preview(self, generation: int, index: int) -> None:
        with self._lock:
            self._preview = (generation, index)
        self._wake.emit()

    # Runs in the worker thread (a decorated slot: PyQt then queues it to the object's thread).
    @pyqtSlot()
    def _process(self) -> None:
        with self._lock:
            to_open, self._open = self._open, None
        if to_open is not None:
            self._do_open(*to_open)
        with self._lock:
            wanted, self._index = self._index, None
        if wanted is not None and self.reader is not None:
            self._do_read(*wanted)
        with self._lock:
            preview, self._preview = self._preview, None
        if preview is not None and self.reader is not None:
            self._do_preview(*preview)
        if self._index_keyframes and self._idle():
            self._index_keyframes = False
            self.keyframes = KeyframePreviews.open(self.reader.path)

    def _idle(self) -> bool:
        with self._lock:
            return self._open is None and self._index is None and self._preview is None

    def _do_open(self, generation: int, path: Path) -> None:
        self.close()
        try:
            self.reader = open_media(path)
        except LabelLoopError as exc:
            self.failed.emit(generation, exc)
            return
        r = self.reader
        self._index_keyframes = isinstance(r, VideoReader)
        self.opened.emit(generation, {"fps": r.fps, "frame_count": r.frame_count,
                                      "width": r.width, "height": r.height})

    def _do_read(self, generation: int, index: int) -> None:
        try:
            bgr = self.reader.read(index)
            timestamp = self.reader.timestamp(index)
        except LabelLoopError as exc:
            self.failed.emit(generation, exc)
            return
        self.frame_decoded.emit(generation, index, bgr, to_qimage(bgr), timestamp)

    def _do_preview(self, generation: int, index: int) -> None:
        """Show something near `index` at once: a cached frame or the nearest keyframe."""
        index = max(0, min(index, self.reader.frame_count - 1))
        if not isinstance(self.reader, VideoReader):     # an image file decodes fast enough
            self._do_read(generation, index)
            return
        shown = self.reader.cache.nearest(index)
        if self.keyframes is not None:
            key = min(self.keyframes.nearest(index), self.reader.frame_count - 1)
            if shown is None or abs(key - index) < abs(shown - index):
                image = self._keyframe_image(key)
                if image is not None:
                    self.preview_decoded.emit(generation, index, key, image)
                    return
        if shown is None:               # no keyframe index (no PyAV) and nothing cached
            self._do_read(generation, index)
            return
        self.preview_decoded.emit(generation, index, shown, to_qimage(self.reader.cache.get(shown)))

    def _keyframe_image(self, key: int) -> QImage | None:
        """A keyframe as a QImage, converted once (scrubbing back and forth reuses it)."""
        image = self._key_images.get(key)
        if image is None:
            bgr = self.keyframes.image(key)
            if bgr is None:
                return None
            image = self._key_images[key] = to_qimage(bgr)
            while len(self._key_images) > 24:
                self._key_images.popitem(last=False)
        self._key_images.move_to_end(key)
        return image

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.keyframes is not None:
            self.keyframes.close()
            self.keyframes = None
        self._key_images.clear()
        self._index_keyframes = False


class DecodeThread:
    """A DecodeWorker in a QThread of its own; `stop()` must be called before exit."""

    def __init__(self) -> None:
        self.thread = QThread()
        self.thread.setObjectName("decodeThread")
        self.worker = DecodeWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self) -> None:
        self.thread.quit()
        self.thread.wait()
        self.worker.close()
