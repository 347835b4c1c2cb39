"""Training samples of a learning session, on disk in the session folder.

A sample is what the user accepted on one corrected frame (or one tracked object on a frame):
some arrays (boxes, masks, embeddings: one `.npz`), optional images (`.png`, lossless) and a
JSON metadata record. Layout, one sample id `<id>`:

    <session>/samples/<id>.npz        arrays (absent when none)
    <session>/samples/<id>.<key>.png  one file per image
    <session>/samples/<id>.json       metadata; written last, it commits the sample

Every file goes through `src/atomic_files.py`; a sample whose json is missing (a crash while
adding it) is not listed and is swept by the next `add` of that id or `clear`. Adding an id
again replaces the sample (the user corrected the frame again).

    store = SampleStore(session_dir / "samples")
    store.add("frame-12", arrays={"boxes": b, "classes": c}, meta={"frame_id": 12})
    for record in store.list(): sample = store.get(record.id)
"""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.atomic_files import write_bytes_atomic, write_text_atomic
from src.errors import StorageError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class SampleRecord:
    """A listed sample: its id, metadata and when it was stored (time.time())."""

    id: str
    meta: dict
    added_at: float


@dataclass
class Sample:
    """A loaded sample."""

    id: str
    meta: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    added_at: float = 0.0


class SampleStore:
    """The samples folder of one learning session."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def add(self, sample_id: str, *, arrays: dict[str, np.ndarray] | None = None,
            images: dict[str, np.ndarray] | None = None, meta: dict | None = None) -> SampleRecord:
        """Store (or replace) a sample; the metadata json is written last."""
        _check_id(sample_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_files(sample_id)
        arrays, images = arrays or {}, images or {}
        if arrays:
            write_bytes_atomic(self._npz(sample_id), _npz_bytes(arrays))
        for key in images:
            _check_id(key)
            write_bytes_atomic(self._png(sample_id, key), _png_bytes(images[key]))
        record = SampleRecord(sample_id, dict(meta or {}), time.time())
        body = {"id": sample_id, "meta": record.meta, "added_at": record.added_at,
                "arrays": sorted(arrays), "images": sorted(images)}
        write_text_atomic(self._json(sample_id), json.dumps(body, indent=1, default=_jsonable))
        return record

    def list(self) -> list[SampleRecord]:
        """Committed samples, oldest first."""
        records = [self._record(p) for p in self.folder.glob("*.json")] if self.folder.exists() else []
        return sorted((r for r in records if r is not None), key=lambda r: (r.added_at, r.id))

    def ids(self) -> list[str]:
        return [r.id for r in self.list()]

    def __len__(self) -> int:
        return len(self.list())

    def __contains__(self, sample_id: str) -> bool:
        return self._json(sample_id).exists()

    def get(self, sample_id: str) -> Sample:
        """Load a sample's arrays and images; StorageError when it is not stored."""
        body = self._body(sample_id)
        arrays = {}
        if body.get("arrays"):
            with np.load(self._npz(sample_id), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        images = {k: _read_png(self._png(sample_id, k)) for k in body.get("images", [])}
        return Sample(sample_id, body.get("meta", {}), arrays, images, body.get("added_at", 0.0))

    def remove(self, sample_id: str) -> bool:
        """Delete a sample; False when there was none."""
        existed = sample_id in self
        self._remove_files(sample_id)
        return existed

    def clear(self) -> None:
        for path in list(self.folder.glob("*")) if self.folder.exists() else []:
            if path.is_file():
                path.unlink(missing_ok=True)

    # -- files -----------------------------------------------------------------------------
    def _json(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.json"

    def _npz(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.npz"

    def _png(self, sample_id: str, key: str) -> Path:
        return self.folder / f"{sample_id}.{key}.png"

    def _remove_files(self, sample_id: str) -> None:
        # json first: a half-removed sample is no longer listed
        self._json(sample_id).unlink(missing_ok=True)
        self._npz(sample_id).unlink(missing_ok=True)
        for png in self.folder.glob(f"{glob_escape(sample_id)}.*.png"):
            png.unlink(missing_ok=True)

    def _body(self, sample_id: str) -> dict:
        try:
            return json.loads(self._json(sample_id).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StorageError(f"no sample {sample_id!r} in this learning session",
                               path=self.folder) from exc
        except json.JSONDecodeError as exc:
            raise StorageError(f"sample {sample_id!r} metadata is unreadable: {exc}",
                               path=self._json(sample_id),
                               hint="remove the sample and correct the frame again") from exc

    def _record(self, path: Path) -> SampleRecord | None:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            return SampleRecord(body["id"], body.get("meta", {}), float(body.get("added_at", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not a sample record (or being replaced right now)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _check_id(sample_id: str) -> None:
    if not isinstance(sample_id, str) or not _ID.fullmatch(sample_id):
        raise ValueError(f"sample id {sample_id!r}: use letters, digits, '_', '-', '.'")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", np.asarray(image))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {np.shape(image)} as PNG")
    return encoded.tobytes()


def _read_png(path: Path) -> np.ndarray:
    import cv2

    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
