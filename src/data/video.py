"""Frame-accurate random access to video files and image folders. Headless: no Qt.

A reader maps a frame index to a BGR uint8 image. `VideoReader` keeps OpenCV's decoder
positioned so that the common moves of an annotator are cheap:

- step forward (read(i + 1) after read(i)): the decoder simply decodes the next frame;
- short forward jump (≤ SHORT_JUMP frames): the frames in between are grabbed (decoded
  without colour conversion), which beats seeking because a seek restarts at a keyframe;
- step back / revisit: served from an LRU cache bounded in bytes; a step back that misses
  the cache re-decodes a window of frames before the target in one seek, so the next steps
  back hit the cache;
- random seek: CAP_PROP_POS_FRAMES, which in OpenCV's FFmpeg backend seeks to the keyframe
  before the target and decodes forward to it. The tests check it is pixel-identical to a
  sequential decode (H.264 with B-frames and a 250-frame GOP, MPEG-4 Part 2, MJPEG), and
  every seek checks that the decoder landed on the frame asked for (else it decodes from
  the start). OpenCV numbers frames by timestamp × fps, which is wrong for variable frame
  rate videos: those are decoded through PyAV by timestamp instead (src/data/video_vfr.py).
- memory: first-touching fresh memory costs about as much as decoding a frame on some
  machines (page faults; ~1 ms per 720p frame on a VM), so no decode lands in fresh memory
  on the hot path: `read` hands out the cached frame itself, read-only, instead of a copy;
  once the cache is full, decodes reuse the buffers of evicted frames that nobody holds;
  while it fills, they take buffers a background thread has already faulted in
  (`PrefaultedBuffers`).

Frame count: CAP_PROP_FRAME_COUNT comes from the container header or is estimated from
duration × fps, so it is wrong for truncated files and some containers. On open the reader
decodes the frame the header says is last; if that fails it bisects (seek + grab) for the
last decodable frame, and if it succeeds it keeps grabbing in case the header undercounts.
`frame_count` is always the number of frames that can actually be decoded.
"""
from __future__ import annotations

import hashlib
import io
import math
import mmap
import os
import re
import sys
import threading
import warnings
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from src.data import limits
from src.data.video_vfr import PtsCapture, is_variable_frame_rate
from src.db.records import MediaSource
from src.errors import MediaError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
SHORT_JUMP = 15        # forward jumps up to this many frames are grabbed instead of seeked
BACKFILL_FRAMES = 30   # frames re-decoded before the target on a backward cache miss
_MAX_SANE_FPS = 1000.0
_MAX_SPARE = 4         # evicted frame buffers kept for reuse
_PREFAULT_AHEAD = 4    # touched buffers kept ready while the cache fills
_VIDEO_HINT = ("choose a video file OpenCV/FFmpeg can decode (mp4, avi, mkv, mov...) "
               "or an image folder")


class FrameIndexError(MediaError, IndexError):
    """A frame index outside 0..frame_count-1 (also an IndexError, like a sequence's)."""


class FrameCache:
    """Decoded frames by index, least recently used evicted first, bounded in bytes."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, on_evict=None) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.nbytes = 0
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._on_evict = on_evict or (lambda frame: None)

    def get(self, index: int) -> np.ndarray | None:
        frame = self._frames.get(index)
        if frame is not None:
            self._frames.move_to_end(index)
        return frame

    def put(self, index: int, frame: np.ndarray) -> None:
        old = self._frames.pop(index, None)
        if old is not None:
            self.nbytes -= old.nbytes
            if old is not frame:
                self._on_evict(old)
        if frame.nbytes > self.max_bytes:
            self._on_evict(frame)
            return
        self._frames[index] = frame
        self.nbytes += frame.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._frames.popitem(last=False)
            self.nbytes -= evicted.nbytes
            self._on_evict(evicted)

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def nearest(self, index: int) -> int | None:
        """The cached index closest to `index` (None when empty); does not touch the LRU order."""
        return min(self._frames, key=lambda i: (abs(i - index), i), default=None)

    def __len__(self) -> int:
        return len(self._frames)


class PrefaultedBuffers:
    """Frame buffers whose pages a background thread has already touched, so that a decode
    into one costs no page faults. It keeps up to `ahead` ready while `wanted()` says more
    frames will be kept (the cache is not full yet), and stops for good when closed."""

    def __init__(self, shape: tuple[int, ...], wanted, ahead: int = _PREFAULT_AHEAD) -> None:
        self.shape, self.ahead, self._wanted = shape, ahead, wanted
        self._ready: deque[np.ndarray] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._fill, name="frame-prefault", daemon=True)
        self._thread.start()

    def take(self) -> np.ndarray | None:
        """A touched buffer, or None when none is ready (the caller allocates as before)."""
        with self._cond:
            buffer = self._ready.popleft() if self._ready else None
            self._cond.notify()
        return buffer

    def ready(self) -> list[np.ndarray]:
        with self._cond:
            return list(self._ready)

    def close(self, wait: bool = True) -> None:
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify()
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def _fill(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or len(self._ready) < self.ahead)
                if self._closed or not self._wanted(len(self._ready)):
                    return
            buffer = np.empty(self.shape, np.uint8)
            buffer.reshape(-1)[::mmap.PAGESIZE] = 0     # fault every page in, here
            with self._cond:
                if self._closed:
                    return
                self._ready.append(buffer)


class MediaReader(ABC):
    """Random access to the frames of one video file or image folder.

    `read` returns a BGR uint8 HxWx3 array that is read-only: it is the cached frame
    itself (a copy would cost fresh memory on every step). Copy it to draw on it; the
    reader never writes into a frame while any array of it is alive. Readers are safe to
    share between threads (one lock per reader).
    """
    path: Path
    fps: float | None
    frame_count: int
    width: int
    height: int

    def __init__(self, path: Path, cache_bytes: int) -> None:
        self.path = path
        self.fps = None
        self.frame_count = 0
        self.width = 0
        self.height = 0
        self._cache = FrameCache(cache_bytes, on_evict=self._recycle)
        self._spare: list[np.ndarray] = []
        self._prefaulted: PrefaultedBuffers | None = None
        self._last: int | None = None  # index served last, to recognise a step back
        self._lock = threading.RLock()

    def read(self, index: int) -> np.ndarray:
        """Frame `index` (0-based), pixel-identical to the same frame of a sequential decode."""
        with self._lock:
            self._check_index(index)
            frame = self._cache.get(index)
            if frame is None:
                frame = self._decode(index)
                self._cache.put(index, frame)
            self._last = index
            view = frame.view()
            view.flags.writeable = False
            return view

    def timestamp(self, index: int) -> float | None:
        """Seconds from the start (index / fps); None when the media has no frame rate."""
        self._check_index(index)
        return index / self.fps if self.fps else None

    def close(self) -> None:
        with self._lock:
            if self._prefaulted is not None:
                self._prefaulted.close()
                self._prefaulted = None
            self._cache.clear()
            self._spare.clear()

    def _recycle(self, frame: np.ndarray) -> None:
        """Keep an evicted frame's memory for the next decode: first-touch page faults on
        fresh memory cost as much as decoding a frame on some machines (VMs)."""
        if len(self._spare) < _MAX_SPARE and frame.flags.c_contiguous and frame.base is None:
            self._spare.append(frame)

    def _spare_buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """Memory for the next decode that costs no page faults: an evicted frame that no
        caller still holds, else a prefaulted buffer; None when there is neither."""
        while self._spare:
            buffer = self._spare.pop()
            # 2 = this name + getrefcount's argument: no array handed out by read() (each
            # one is a view whose .base is this buffer) is alive, so it may be overwritten
            if buffer.shape == shape and sys.getrefcount(buffer) == 2:
                return buffer
        return self._prefaulted.take() if self._prefaulted is not None else None

    def _start_prefaulting(self, shape: tuple[int, ...]) -> None:
        """Touch buffers for the coming decodes in a background thread while the cache
        fills (only when the cache holds several frames: not for one-off readers)."""
        frame_bytes = int(np.prod(shape))
        cache = self._cache
        if cache.max_bytes < 2 * frame_bytes:
            return

        def wanted(ready: int) -> bool:
            return cache.nbytes + (ready + 1) * frame_bytes <= cache.max_bytes

        self._prefaulted = PrefaultedBuffers(shape, wanted)
        weakref.finalize(self, self._prefaulted.close, False)   # a reader never closed

    @property
    def cache(self) -> FrameCache:
        return self._cache

    @abstractmethod
    def _decode(self, index: int) -> np.ndarray:
        """Decode frame `index` (already range-checked, not in the cache)."""

    def _check_index(self, index: int) -> None:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"frame index must be an int, got {type(index).__name__}")
        if not 0 <= index < self.frame_count:
            raise FrameIndexError(
                f"frame {index} is out of range (0..{self.frame_count - 1}, "
                f"{self.frame_count} frames)", path=self.path,
                hint="use an index between 0 and frame_count - 1")

    def __enter__(self) -> "MediaReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.frame_count} frames, "
                f"{self.width}x{self.height}, fps={self.fps})")


class VideoReader(MediaReader):
    """A video file decoded by OpenCV (FFmpeg backend preferred)."""

    def __init__(self, path: str | Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        super().__init__(Path(path), cache_bytes)
        _check_readable(self.path, folder=False)
        self.variable_frame_rate = is_variable_frame_rate(self.path)
        self._cap = self._open_decoder()
        self._next: int | None = 0     # index the next cap.read() returns; None = unknown
        try:
            reported = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
            first = self._read_first(reported)
            self.height, self.width = first.shape[:2]
            self.fps = _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
            self.frame_count = self._verified_frame_count(reported)
        except BaseException:
            self._cap.release()
            raise
        self._cache.put(0, first)
        self._start_prefaulting(first.shape)

    def timestamp(self, index: int) -> float | None:
        """Seconds from the first frame: from the frame's own timestamp when the frame rate
        is variable, else index / fps."""
        self._check_index(index)
        exact = getattr(self._cap, "timestamp", None)
        return exact(index) if exact is not None else super().timestamp(index)

    def close(self) -> None:
        with self._lock:
            self._cap.release()
            self._next = None
            super().close()

    def _open_decoder(self):
        """OpenCV, or for a variable-frame-rate video the timestamp-indexed PyAV decoder
        (see src/data/video_vfr.py); OpenCV again if PyAV cannot index the file."""
        if self.variable_frame_rate:
            cap = self._open_pts_capture()
            if cap is not None:
                return cap
            self.variable_frame_rate = False
        return _open_capture(self.path)

    def _open_pts_capture(self) -> "PtsCapture | None":
        """The PyAV decoder, or None when PyAV cannot open or index the file."""
        try:
            cap = PtsCapture(self.path)
        except Exception:  # noqa: BLE001 - any PyAV failure: OpenCV reads it instead
            return None
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _read_first(self, reported: int) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if reported == 0:
                raise MediaError("the video has no frames", path=self.path,
                                 hint="the file is empty or was not finished writing; "
                                      "choose another video")
            raise MediaError("no frame of this file can be decoded", path=self.path,
                             hint=_VIDEO_HINT)
        self._next = 1
        return _as_bgr(frame)

    def _verified_frame_count(self, reported: int) -> int:
        """The number of decodable frames (the header's count, checked; see module doc)."""
        count = 1                        # frame 0 was just read
        if reported > 1 and self._seek_grab(reported - 1):
            count = reported
        elif reported > 1:
            last = self._bisect_last_decodable(0, reported - 1)
            if not self._seek_grab(last):    # a backend that cannot seek: count them all
                self._rewind()
                last = -1
            count = last + 1
        while self._cap.grab():          # the header may undercount
            count += 1
        self._next = None
        return count

    def _bisect_last_decodable(self, good: int, bad: int) -> int:
        while bad - good > 1:
            mid = (good + bad) // 2
            if self._seek_grab(mid):
                good = mid
            else:
                bad = mid
        return good

    def _seek(self, index: int) -> bool:
        """Position the decoder so the next read returns frame `index`."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        landed = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == index
        self._next = index if landed else None
        return landed

    def _seek_grab(self, index: int) -> bool:
        if not self._seek(index) or not self._cap.grab():
            self._next = None
            return False
        self._next = index + 1
        return True

    def _decode(self, index: int) -> np.ndarray:
        nxt, last = self._next, self._last
        if nxt is not None and nxt <= index <= nxt + SHORT_JUMP:
            self._grab_until(index)
        elif last is not None and index < last <= index + SHORT_JUMP:
            return self._backfill(index)
        else:
            self._seek_exact(index)
        return self._read_next(index)

    def _grab_until(self, index: int) -> None:
        """Decode (without colour conversion) up to, not including, frame `index`."""
        while self._next < index:
            if not self._cap.grab():
                self._fail(self._next)
            self._next += 1

    def _backfill(self, index: int) -> np.ndarray:
        """A step back that missed the cache: decode a window ending at `index` into it."""
        window = max(1, min(BACKFILL_FRAMES, self._cache.max_bytes // (2 * self._frame_bytes())))
        start = max(0, index - window + 1)
        self._seek_exact(start)
        for i in range(start, index):
            self._cache.put(i, self._read_next(i))
        return self._read_next(index)

    def _seek_exact(self, index: int) -> None:
        """Seek to `index`; if the decoder does not land on it (timestamps that do not map
        to frame numbers, e.g. variable frame rate), decode from the start instead."""
        if not self._seek(index):
            self._rewind()
            self._grab_until(index)

    def _rewind(self) -> None:
        """A fresh decoder at frame 0 (sequential decode defines what frame N is)."""
        self._cap.release()
        self._cap = self._open_decoder()
        self._next = 0

    def _read_next(self, index: int) -> np.ndarray:
        buffer = self._spare_buffer((self.height, self.width, 3))
        ok, frame = self._cap.read(buffer) if buffer is not None else self._cap.read()
        if not ok or frame is None:
            self._fail(index)
        self._next = index + 1
        return _as_bgr(frame)

    def _fail(self, index: int):
        self._next = None
        raise MediaError(f"frame {index} cannot be decoded", path=self.path,
                         hint="the file may be corrupt; try another frame or re-encode it")

    def _frame_bytes(self) -> int:
        return max(1, self.width * self.height * 3)


class ImageFolderReader(MediaReader):
    """The supported images of one folder in natural name order; index = position."""

    def __init__(self, path: str | Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        super().__init__(Path(path), cache_bytes)
        _check_readable(self.path, folder=True)
        self.files = list_image_files(self.path)
        self.frame_count = len(self.files)
        first = self._decode(0)
        self.height, self.width = first.shape[:2]
        self._cache.put(0, first)

    def file(self, index: int) -> Path:
        """The image file behind frame `index`."""
        self._check_index(index)
        return self.files[index]

    def timestamp(self, index: int) -> float | None:
        self._check_index(index)
        return None

    def _decode(self, index: int) -> np.ndarray:
        return decode_image_file(self.files[index])


def open_media(path: str | Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> MediaReader:
    """A reader for a video file or an image folder; MediaError for anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MediaError("no such file or folder", path=path,
                         hint="check the path; " + _VIDEO_HINT)
    if path.is_dir():
        return ImageFolderReader(path, cache_bytes=cache_bytes)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise MediaError("this is a single image, not a video", path=path,
                         hint="import the folder that holds the images instead")
    return VideoReader(path, cache_bytes=cache_bytes)


def probe_media(path: str | Path) -> MediaSource:
    """An unsaved MediaSource describing the video or image folder at `path`."""
    path = Path(path).expanduser().resolve()
    with open_media(path, cache_bytes=0) as reader:
        if isinstance(reader, ImageFolderReader):
            sha, size = _folder_digest(reader.files)
            kind = "images"
        else:
            sha, size = _file_digest(path), path.stat().st_size
            kind = "video"
        return MediaSource(kind=kind, path=str(path), name=path.name, sha256=sha,
                           size_bytes=size, fps=reader.fps, frame_count=reader.frame_count,
                           width=reader.width, height=reader.height)


def list_image_files(folder: Path) -> list[Path]:
    """Supported, non-hidden image files directly in `folder`, in natural name order."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise MediaError(f"cannot list the folder ({exc.strerror})", path=folder,
                         hint="check that the folder exists and you may read it") from exc
    files = [Path(e.path) for e in entries
             if e.is_file() and not e.name.startswith(".")
             and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
    if not files:
        others = sum(1 for e in entries if e.is_file())
        raise MediaError(f"the folder has no supported images ({others} other files)",
                         path=folder,
                         hint=f"put {', '.join(IMAGE_EXTENSIONS)} images in it, or choose a video")
    return sorted(files, key=_natural_key)


def decode_image_file(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode one image file; MediaError naming the file if it is unreadable or corrupt."""
    data = _read_bytes(path)
    _check_pixels(data, path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if image is None:
        raise MediaError("this image cannot be decoded (corrupt or not a supported image)",
                         path=path, hint="replace or remove the file, then import again")
    if path.suffix.lower() in (".jpg", ".jpeg") and b"\xff\xd9" not in data[-1024:]:
        # libjpeg decodes a truncated JPEG without error, filling the rest with grey
        raise MediaError("this JPEG is truncated (no end-of-image marker)", path=path,
                         hint="replace the file with a complete copy, then import again")
    return _as_bgr(image) if flags == cv2.IMREAD_COLOR else image


def _check_pixels(data: bytes, path: Path) -> None:
    """Refuse an image whose header declares more pixels than the limit, before decoding it:
    a few hundred KB of PNG can declare 20000x20000 pixels (1.2 GB once decoded)."""
    limit = limits.IMAGE_PIXELS.value()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
        pixels, size = width * height, f"{width}x{height} = "
    except Image.DecompressionBombError as exc:   # over PIL's own limit, 2 x 89 megapixels
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0)
        size = ""
    except Exception:  # noqa: BLE001 - not something PIL reads: OpenCV decides below
        return
    if pixels > limit:
        raise MediaError(f"the image is too large to decode: {size}"
                         f"{limits.IMAGE_PIXELS.exceeded(pixels)}", path=path,
                         hint="downscale the image, or raise the limit if it is genuine")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read the image ({exc.strerror})", path=path,
                         hint="check the file's permissions") from exc


def _natural_key(path: Path) -> list:
    """frame2.png before frame10.png; case-insensitive."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", path.name.lower())]


def _check_readable(path: Path, *, folder: bool) -> None:
    if not path.exists():
        raise MediaError("no such file or folder", path=path, hint="check the path")
    if folder != path.is_dir():
        what = "a folder" if folder else "a file"
        raise MediaError(f"expected {what}", path=path, hint=_VIDEO_HINT)
    mode = os.R_OK | (os.X_OK if folder else 0)
    if not os.access(path, mode):
        raise MediaError("permission denied", path=path,
                         hint="make it readable for your user (chmod/ownership), then retry")


def _open_capture(path: Path) -> cv2.VideoCapture:
    """FFmpeg first (frame-accurate seeking), then whatever backend OpenCV has."""
    for backend in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
        cap = cv2.VideoCapture(str(path), backend)
        if cap.isOpened():
            return cap
        cap.release()
    raise MediaError("this file is not a video OpenCV can decode", path=path, hint=_VIDEO_HINT)


def _sane_fps(fps: float) -> float | None:
    return float(fps) if math.isfinite(fps) and 0 < fps <= _MAX_SANE_FPS else None


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Normalise to BGR uint8 HxWx3 (grey or BGRA decodes, 16-bit images)."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / np.iinfo(image.dtype).max) \
            if np.issubdtype(image.dtype, np.integer) else np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise MediaError(f"cannot read the file ({exc.strerror})", path=path,
                         hint="check the file's permissions") from exc
    return digest.hexdigest()


def _folder_digest(files: list[Path]) -> tuple[str, int]:
    """sha256 of the sorted 'name<TAB>size' lines, and the total size."""
    digest, total = hashlib.sha256(), 0
    for f in sorted(files, key=lambda p: p.name):
        size = f.stat().st_size
        total += size
        digest.update(f"{f.name}\t{size}\n".encode())
    return digest.hexdigest(), total
