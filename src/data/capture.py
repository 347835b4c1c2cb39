"""Registering media in a project and capturing frames into frames/<source id>/. Headless.

Files are written atomically (temp file + os.replace; an image folder's frames are staged
in a temp folder that is renamed into place) and the rows in the same step, so a failed
import leaves neither files nor rows behind. Capturing is idempotent: a frame that already
has a row is returned as it is, its file is not rewritten.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
from PIL import Image

from src.data.video import (FrameIndexError, ImageFolderReader, MediaReader, decode_image_file,
                            open_media, probe_media)
from src.db import frames as frames_db
from src.db import leftovers
from src.db import sources as sources_db
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import Frame, MediaSource
from src.disk_space import reports_full_disk
from src.platform_support import link_or_copy
from src.errors import MediaError
from src.processes import crash_point

_EXIF_ORIENTATION = 0x0112


def frame_image_path(project: Project, source_id: int, index: int, suffix: str = ".png") -> Path:
    """Where frame `index` of source `source_id` is stored: frames/<id>/<index:06d><suffix>."""
    return project.frames_dir / str(source_id) / f"{index:06d}{suffix}"


@reports_full_disk("the imported frames", lambda project, *_, **__: project.frames_dir)
def import_media(project: Project, path: str | Path) -> tuple[MediaSource, list[Frame]]:
    """Register a video (no frames captured) or an image folder (every image captured).

    Re-importing a path already registered returns that source and its frames. Every image
    of a folder is decoded before anything is written, so a corrupt one writes nothing.
    """
    resolved = Path(path).expanduser().resolve()
    existing = sources_db.get_source_by_path(project.conn, str(resolved))
    if existing is not None:
        return existing, frames_db.list_frames(project.conn, existing.id)
    record = probe_media(resolved)
    if record.kind == "video":
        with transaction(project.conn):
            source, created = sources_db.add_source_if_new(project.conn, record)
            if created:
                _remove_stale(project, project.frames_dir / str(source.id))
        return source, [] if created else frames_db.list_frames(project.conn, source.id)
    return _import_image_folder(project, record)


@reports_full_disk("the captured frames", lambda project, *_, **__: project.frames_dir)
def capture_frames(project: Project, source: MediaSource, indices: Iterable[int],
                   reader: MediaReader | None = None) -> list[Frame]:
    """Capture frames `indices` of `source` (in that order in the result).

    Frames are decoded in ascending order (forward steps, the cheapest way through a video);
    each is written as frames/<id>/<index:06d>.png and its row added. Already-captured frames
    are returned unchanged. Pass the `reader` you already have open to avoid reopening it.
    """
    wanted = [int(i) for i in indices]
    for index in wanted:
        _check_index(source, index)
    captured = {i: frames_db.get_frame_at(project.conn, source.id, i) for i in set(wanted)}
    missing = sorted(i for i, frame in captured.items() if frame is None)
    if missing:
        own_reader = reader is None
        reader = reader or open_media(source.path, cache_bytes=0)
        try:
            captured.update((i, _capture_one(project, source, i, reader)) for i in missing)
        finally:
            if own_reader:
                reader.close()
    return [captured[i] for i in wanted]


@reports_full_disk("the captured frame", lambda project, *_, **__: project.frames_dir)
def capture_array(project: Project, source: MediaSource, index: int, image: np.ndarray, *,
                  timestamp_s: float | None = None) -> Frame:
    """Capture the frame the caller already has decoded (the GUI's current frame).

    `timestamp_s` defaults to index / fps; pass reader.timestamp(index) to record the exact
    time of a variable-frame-rate video's frame.
    """
    _check_index(source, index)
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise ValueError("image must be a BGR uint8 HxWx3 array, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} "
                         f"{getattr(image, 'shape', '')}")
    if source.kind == "video" and (image.shape[1], image.shape[0]) != (source.width, source.height):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but {source.name} is "
                         f"{source.width}x{source.height}; pass the frame at full resolution")
    existing = frames_db.get_frame_at(project.conn, source.id, index)
    if existing is not None:
        return existing
    if timestamp_s is None:
        timestamp_s = _timestamp(source, index)
    return _store_png(project, source, index, image, timestamp_s)


def _capture_one(project: Project, source: MediaSource, index: int, reader: MediaReader) -> Frame:
    if isinstance(reader, ImageFolderReader):
        return _store_image_file(project, source, index, _plan_image(reader.file(index)))
    return _store_png(project, source, index, reader.read(index), reader.timestamp(index))


def _store_png(project: Project, source: MediaSource, index: int, image: np.ndarray,
               timestamp_s: float | None) -> Frame:
    data = _encode_png(image)
    frame = Frame(source_id=source.id, frame_index=index, image_path="",
                  width=image.shape[1], height=image.shape[0], timestamp_s=timestamp_s)
    return _place_frame(project, frame, ".png", lambda staged: staged.write_bytes(data))


def _store_image_file(project: Project, source: MediaSource, index: int,
                      plan: "_ImagePlan") -> Frame:
    frame = Frame(source_id=source.id, frame_index=index, image_path="",
                  width=plan.width, height=plan.height)
    return _place_frame(project, frame, plan.suffix,
                        lambda staged: os.replace(_stage(plan, staged.parent), staged))


def _place_frame(project: Project, frame: Frame, suffix: str,
                 write: Callable[[Path], object]) -> Frame:
    """Write the frame's file into a staging folder named after it, then rename it into
    place and insert its row in one transaction. A killed capture leaves only the staging
    folder, which the next project open uses to undo the rename if the row never landed."""
    target = frame_image_path(project, frame.source_id, frame.frame_index, suffix)
    staging = leftovers.staging_dir(project.frames_dir, "capture", leftovers.capture_tag(
        frame.source_id, frame.frame_index, suffix))
    placed = False
    try:
        staged = staging / target.name
        write(staged)
        crash_point("capture:staged")
        with transaction(project.conn):
            existing = frames_db.get_frame_at(project.conn, frame.source_id, frame.frame_index)
            if existing is not None:  # another process captured it while we decoded
                return existing
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            placed = True
            crash_point("capture:placed")
            frame.image_path = project.relpath(target)
            return frames_db.add_frame(project.conn, frame)
    except BaseException:
        if placed and frames_db.get_frame_at(project.conn, frame.source_id,
                                             frame.frame_index) is None:
            target.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- image folders -------------------------------------------------------------------------

@dataclass
class _ImagePlan:
    """How one image of a folder becomes a frame: linked as it is, or converted to PNG."""
    source: Path
    width: int
    height: int
    convert: bool          # not plain 8-bit BGR as stored: decode + write as PNG

    @property
    def suffix(self) -> str:
        return ".png" if self.convert else self.source.suffix.lower()


def _plan_image(path: Path) -> _ImagePlan:
    """Decode the image (MediaError if corrupt) and decide whether it can be linked as is.

    Linked files must mean the same pixels to every reader downstream (OpenCV, PIL,
    Ultralytics): 8-bit, 3 channels, no EXIF rotation. Anything else is stored as the
    BGR PNG our reader decodes, so annotations stay aligned with what training sees.
    """
    raw = decode_image_file(path, cv2.IMREAD_UNCHANGED)
    plain = raw.dtype == np.uint8 and raw.ndim == 3 and raw.shape[2] == 3
    plain = plain and _exif_orientation(path) in (None, 1)
    if plain:
        return _ImagePlan(path, raw.shape[1], raw.shape[0], convert=False)
    image = decode_image_file(path)
    return _ImagePlan(path, image.shape[1], image.shape[0], convert=True)


def _exif_orientation(path: Path) -> int | None:
    try:
        with Image.open(path) as im:
            return im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - PIL (or a plugin ultralytics patches in) cannot parse
        # what OpenCV could decode: then there is no EXIF orientation to honour
        return None


def _import_image_folder(project: Project, record: MediaSource) -> tuple[MediaSource, list[Frame]]:
    staged = stage_image_folder(project, record)
    try:
        return register_staged_folder(project, staged)
    finally:
        staged.discard()


@dataclass
class StagedFolder:
    """An image folder decoded and linked into a staging folder, not yet in the store."""
    record: MediaSource
    plans: list[_ImagePlan]
    names: list[str]
    staging: Path

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def stage_image_folder(project: Project, record: MediaSource,
                       folder: Path | None = None) -> StagedFolder:
    """Decode every image of the folder (`record.path`, or `folder` when its files are still
    elsewhere) and stage its frames, holding no database lock (the slow part of an import:
    other writers go on meanwhile). Call `discard()` when done."""
    reader = ImageFolderReader(folder or record.path, cache_bytes=0)
    plans = [_plan_image(f) for f in reader.files]
    staging = leftovers.staging_dir(project.frames_dir, "import")
    try:
        names = [f"{i:06d}{plan.suffix}" for i, plan in enumerate(plans)]
        for plan, name in zip(plans, names):
            os.replace(_stage(plan, staging), staging / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    crash_point("import:staged")
    return StagedFolder(record, plans, names, staging)


def register_staged_folder(project: Project,
                           staged: StagedFolder) -> tuple[MediaSource, list[Frame]]:
    """Insert the source and frame rows and rename the staged folder into place, in one
    short transaction (nested in the caller's, if any)."""
    record, plans, names = staged.record, staged.plans, staged.names
    placed: Path | None = None
    try:
        with transaction(project.conn):
            existing = sources_db.get_source_by_path(project.conn, record.path)
            if existing is not None:  # another process imported it while we staged
                return existing, frames_db.list_frames(project.conn, existing.id)
            source = sources_db.add_source(project.conn, record)
            placed = project.frames_dir / str(source.id)
            _move_into_place(project, staged.staging, placed)
            crash_point("import:placed")
            folder = project.relpath(placed)      # resolved once: it costs syscalls per call
            frames = frames_db.add_source_frames(project.conn, source.id, [Frame(
                source_id=source.id, frame_index=i, image_path=f"{folder}/{name}",
                width=plan.width, height=plan.height)
                for i, (plan, name) in enumerate(zip(plans, names))])
    except BaseException:
        if placed is not None:
            shutil.rmtree(placed, ignore_errors=True)
        raise
    return source, frames


def _stage(plan: _ImagePlan, folder: Path) -> Path:
    """A temp file in `folder` holding the frame: a hard link, else a copy, else a PNG."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=plan.suffix, dir=folder)
    os.close(fd)
    tmp = Path(tmp)
    try:
        if plan.convert:
            tmp.write_bytes(_encode_png(decode_image_file(plan.source)))
            return tmp
        tmp.unlink()
        link_or_copy(plan.source, tmp)   # a copy on another file system or without links
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _move_into_place(project: Project, staging: Path, target: Path) -> None:
    """Rename the staged folder to frames/<id>; a stale folder left by a deleted source with
    the same id (SQLite may reuse it) is replaced."""
    _remove_stale(project, target)
    os.replace(staging, target)


def _remove_stale(project: Project, folder: Path) -> None:
    """Remove frames/<id> left by a deleted source whose id SQLite handed out again."""
    if folder.exists():
        stale = leftovers.staging_dir(project.frames_dir, "stale", folder.name)
        stale.rmdir()  # only the unique name is wanted: a folder cannot replace another
        os.replace(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)


# --- helpers ---------------------------------------------------------------------------------

def _encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise MediaError(f"cannot encode a {image.shape} {image.dtype} image as PNG")
    return buf.tobytes()


def _check_index(source: MediaSource, index: int) -> None:
    if source.id is None:
        raise ValueError("the source is not registered in the project (no id); import it first")
    if not 0 <= index < source.frame_count:
        raise FrameIndexError(
            f"frame {index} is out of range (0..{source.frame_count - 1}, "
            f"{source.frame_count} frames)", path=source.path,
            hint="use an index between 0 and the source's frame count - 1")


def _timestamp(source: MediaSource, index: int) -> float | None:
    return index / source.fps if source.fps else None
