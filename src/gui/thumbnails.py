"""Gallery thumbnails: made once from the captured image, cached as JPEG under <project>/.thumbs.

`ThumbnailLoader` decodes on a small thread pool and reports through a signal; `decodes`
counts every image decoded (cache hit or miss), which the benchmark uses to check that
scrolling only loads what is visible.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal
from PyQt6.QtGui import QImage

from src.atomic_files import write_bytes_atomic
from src.db.records import Frame

THUMB_SIZE = 128


class ThumbnailCache:
    """JPEG thumbnails on disk, one per (source, frame index)."""

    def __init__(self, project_root: Path, size: int = THUMB_SIZE) -> None:
        self.root = Path(project_root)
        self.folder = self.root / ".thumbs"
        self.size = size
        self._lock = threading.Lock()
        self.decodes = 0

    def path_for(self, frame: Frame) -> Path:
        return self.folder / str(frame.source_id) / f"{frame.frame_index:06d}_{self.size}.jpg"

    def load(self, frame: Frame) -> QImage:
        """The thumbnail, made and cached if missing (runs in a pool thread)."""
        with self._lock:
            self.decodes += 1
        cached = self.path_for(frame)
        if cached.is_file():
            image = QImage(str(cached))
            if not image.isNull():
                return image
        data = self._make(frame, cached)
        image = QImage()
        image.loadFromData(data, "JPG")
        return image

    def _make(self, frame: Frame, target: Path) -> bytes:
        source = self.root / frame.image_path
        pixels = cv2.imdecode(np.fromfile(str(source), np.uint8), cv2.IMREAD_COLOR) \
            if source.is_file() else None
        if pixels is None:
            pixels = np.full((self.size * 3 // 4, self.size, 3), 64, np.uint8)
            cv2.putText(pixels, "missing", (8, self.size // 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (200, 200, 255), 1)
            return cv2.imencode(".jpg", pixels)[1].tobytes()
        h, w = pixels.shape[:2]
        scale = self.size / max(h, w)
        if scale < 1:
            pixels = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                interpolation=cv2.INTER_AREA)
        data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        write_bytes_atomic(target, data)
        return data

    def remove(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.path_for(frame).unlink(missing_ok=True)


class _LoadJob(QRunnable):
    def __init__(self, loader: "ThumbnailLoader", frame: Frame) -> None:
        super().__init__()
        self.loader, self.frame = loader, frame

    def run(self) -> None:
        try:
            image = self.loader.cache.load(self.frame)
        except (OSError, cv2.error) as exc:
            self.loader.failed.emit(self.frame.id, str(exc))
            return
        self.loader.loaded.emit(self.frame.id, image)


class ThumbnailLoader(QObject):
    loaded = pyqtSignal(int, QImage)        # frame id, thumbnail
    failed = pyqtSignal(int, str)

    def __init__(self, cache: ThumbnailCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)

    def request(self, frame: Frame) -> None:
        self.pool.start(_LoadJob(self, frame))

    def stop(self) -> None:
        """Drop queued jobs and wait for running ones. Waits in short slices: PyQt holds the
        GIL inside waitForDone, and a job still running Python code needs it to finish."""
        self.pool.clear()
        while not self.pool.waitForDone(5):
            time.sleep(0.002)
