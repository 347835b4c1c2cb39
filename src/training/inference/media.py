"""What to predict on: one image, an image folder, a video, or a project source, read
frame-exactly through src/data/video.py; and frame ranges ('A:B', 'A:', ':B', 'A:B:S')."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from src.data.video import IMAGE_EXTENSIONS, MediaReader, decode_image_file, open_media
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import MediaSource
from src.errors import MediaError


@dataclass
class MediaInput:
    """An open image/folder/video; `source` is set when it is registered in the project."""
    name: str
    frame_count: int
    fps: Optional[float]
    reader: Optional[MediaReader] = None
    image: Optional[np.ndarray] = None         # a single image file
    source: Optional[MediaSource] = None

    def read(self, index: int) -> np.ndarray:
        if self.reader is not None:
            return self.reader.read(index)
        if index != 0:
            raise MediaError(f"a single image has only frame 0, not {index}", field="--frames")
        return self.image.copy()

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def __enter__(self) -> "MediaInput":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_input(ref: str | Path, project: Project | None = None, *,
               register: bool = False) -> MediaInput:
    """A project source (id or name) when `project` has one called `ref`, else the image,
    folder or video at path `ref` (registered in the project first when `register`)."""
    source = _project_source(project, str(ref))
    path = Path(ref).expanduser()
    if source is None and register and project is not None and path.exists():
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            raise MediaError("storing proposals needs a video or an image folder", path=path,
                             hint="import the folder that holds the image, then predict on it")
        from src.data.capture import import_media
        source, _ = import_media(project, path)
    if source is not None:
        reader = open_media(source.path, cache_bytes=0)
        return MediaInput(source.name, reader.frame_count, reader.fps, reader=reader,
                          source=source)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return MediaInput(path.name, 1, None, image=decode_image_file(path))
    if not path.exists():
        raise MediaError(f"'{ref}' is neither a file/folder nor a source of this project",
                         field="SOURCE", hint="pass an image, folder or video path, or a "
                                              "source id/name that `info` lists")
    reader = open_media(path, cache_bytes=0)
    return MediaInput(path.name, reader.frame_count, reader.fps, reader=reader)


def _project_source(project: Project | None, ref: str) -> MediaSource | None:
    if project is None:
        return None
    try:
        return sources_repo.find_source(project.conn, ref)
    except MediaError:
        return None


def parse_frames(text: str | None, frame_count: int) -> list[int]:
    """Indices of 'A:B' (B excluded, like a Python slice), 'A:', ':B', 'A:B:S' or 'N';
    every frame when None. Out-of-range or empty ranges are refused."""
    if text is None or text.strip() in ("", ":"):
        return list(range(frame_count))
    parts = text.split(":")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise MediaError(f"frame range must be integers like 10:50, got '{text}'",
                         field="--frames") from None
    if len(values) == 1:
        values = [values[0], values[0] + 1 if values[0] is not None else None]
    zero_step = len(values) == 3 and values[2] == 0
    if len(values) > 3 or zero_step or any(v is not None and v < 0 for v in values):
        raise MediaError(f"bad frame range '{text}'", field="--frames",
                         hint="use A:B, A:, :B or A:B:STEP with non-negative numbers")
    start = values[0] or 0
    stop = values[1] if values[1] is not None else frame_count
    step = values[2] if len(values) == 3 and values[2] else 1
    if start >= frame_count or stop > frame_count or start >= stop:
        raise MediaError(f"frame range '{text}' is outside 0..{frame_count} or empty",
                         field="--frames", hint=f"this media has {frame_count} frame(s)")
    return list(range(start, stop, step))


def batches(media: MediaInput, indices: list[int], size: int
            ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """(indices, BGR images) in chunks of `size`, decoded in the order given."""
    for start in range(0, len(indices), size):
        chunk = indices[start:start + size]
        yield chunk, [media.read(i) for i in chunk]
