"""Atomic file writes: write a temp file beside the target, then os.replace it
(retried while Windows reports the target busy).

A reader (or a crash) never sees a half-written file: either the old one or the new one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from src.platform_support import replace_file


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; it replaces `path` when the block succeeds
    and is removed when it fails. Use it for writers that take a path (torch.save, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        replace_file(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def torch_save_atomic(obj, path: str | Path) -> Path:
    """torch.save through a temp file: a checkpoint is never seen half-written."""
    import torch  # only the training code needs torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    import shutil

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
