"""Frame embeddings computed once: a bounded in-memory LRU in front of one file per source
frame under the project (`cache/sam/<engine key>/<source id>/<frame index>.pt`, fp16,
written atomically). Thread-safe: a GUI worker fills it while the canvas reads from it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from src.atomic_files import torch_save_atomic
from src.training.sam.engine import FrameEmbedding, SamEngine
from src.training.sam.prompts import Letterbox

DEFAULT_MEMORY_BYTES = 256 * 1024 ** 2


def cache_dir(project_root: str | Path, engine: SamEngine) -> Path:
    return Path(project_root) / "cache" / "sam" / engine.key


class EmbeddingCache:
    """get_or_compute((source id, frame index), read image) → FrameEmbedding."""

    def __init__(self, engine: SamEngine, folder: str | Path | None,
                 max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.engine, self.max_bytes = engine, max_bytes
        self.folder = Path(folder) if folder is not None else None
        self._memory: OrderedDict[tuple[int, int], FrameEmbedding] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0          # encoder runs (what the cache saves)

    def get(self, source_id: int, frame_index: int) -> FrameEmbedding | None:
        """From memory, else from disk; None when the encoder has not run on this frame."""
        key = (source_id, frame_index)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        emb = self._load(key)
        if emb is not None:
            self._remember(key, emb)
        return emb

    def get_or_compute(self, source_id: int, frame_index: int,
                       read_image: Callable[[], np.ndarray]) -> FrameEmbedding:
        emb = self.get(source_id, frame_index)
        if emb is not None:
            return emb
        emb = self.engine.embed(read_image())
        self.computed += 1
        self._save((source_id, frame_index), emb)
        self._remember((source_id, frame_index), emb)
        return emb

    def __contains__(self, key: tuple[int, int]) -> bool:
        with self._lock:
            if key in self._memory:
                return True
        return self._path(key) is not None and self._path(key).is_file()

    @property
    def memory_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._memory.values())

    def _remember(self, key: tuple[int, int], emb: FrameEmbedding) -> None:
        with self._lock:
            self._memory[key] = emb
            self._memory.move_to_end(key)
            total = sum(e.nbytes for e in self._memory.values())
            while len(self._memory) > 1 and total > self.max_bytes:
                _, dropped = self._memory.popitem(last=False)
                total -= dropped.nbytes

    def _path(self, key: tuple[int, int]) -> Path | None:
        return None if self.folder is None else self.folder / str(key[0]) / f"{key[1]}.pt"

    def _save(self, key: tuple[int, int], emb: FrameEmbedding) -> None:
        path = self._path(key)
        if path is None:
            return
        box = emb.letterbox
        torch_save_atomic({"feats": [f.half() for f in emb.feats],
                           "letterbox": [box.height, box.width, box.size]}, path)

    def _load(self, key: tuple[int, int]) -> FrameEmbedding | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:   # noqa: BLE001 - a damaged cache file is recomputed, not fatal
            path.unlink(missing_ok=True)
            return None
        return FrameEmbedding([f.float() for f in data["feats"]], Letterbox(*data["letterbox"]))
