"""What may be unpickled: the one place that decides whether a model file is safe to load.

A `.pt` file is a pickle, and unpickling runs whatever code the file names (`__reduce__`).
Ultralytics checkpoints need full unpickling, so for them content is trusted, not paths:
the project's `trusted_files` table holds the sha256 of every file LabelLoop itself wrote
(run checkpoints, registered versions, downloads) and of every file the user explicitly
trusted (`models import`/`models trust`, `train --trust`). Any other file, or a trusted file
whose content changed, is refused before a byte of it is unpickled. Our own tensors load
with `weights_only=True` or from safetensors and need no trust.

Load sites call `check_before_unpickle(path)`. It enforces the gate opened by the runner,
the CLI and the model manager (`with gate(conn): ...`); library calls made outside any gate
(a script calling `train_yolo` directly) are the caller's own trust decision.
"""
from __future__ import annotations

import hashlib
import sqlite3
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from src.db import model_versions as repo
from src.errors import ModelIntegrityError, UntrustedModelError

SAFE_SUFFIXES = (".safetensors", ".onnx", ".json", ".yaml", ".yml", ".txt")
_CHUNK = 1 << 20
_gate: ContextVar["_Gate | None"] = ContextVar("labelloop_trust_gate", default=None)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def needs_trust(path: str | Path) -> bool:
    """True for files whose loading can run code (pickles: .pt, .pth, .ckpt, .bin, ...)."""
    return not str(path).lower().endswith(SAFE_SUFFIXES)


def record_written(conn: sqlite3.Connection, path: str | Path, origin: str) -> str:
    """LabelLoop just wrote `path` (origin 'run', 'model' or 'download'): trust its content."""
    sha = sha256_file(path)
    repo.add_trusted(conn, sha, origin, str(Path(path).resolve()))
    return sha


def trust_file(conn: sqlite3.Connection, path: str | Path) -> str:
    """The user vouches for this file's current content."""
    return record_written(conn, path, "user")


def is_trusted(conn: sqlite3.Connection, path: str | Path) -> bool:
    return repo.trusted_origin(conn, sha256_file(path)) is not None


def require_trusted(conn: sqlite3.Connection, path: str | Path, *,
                    hint: str | None = None) -> str:
    """The file's sha256 when it may be unpickled; UntrustedModelError (nothing loaded) if not."""
    path = Path(path)
    if not path.is_file():
        raise ModelIntegrityError("model file not found", path=path,
                                  hint="the file was moved or deleted")
    sha = sha256_file(path)
    if repo.trusted_origin(conn, sha) is not None:
        return sha
    known = repo.trusted_paths(conn, str(path.resolve()))
    why = ("changed since LabelLoop wrote it" if known else
           "was not written by LabelLoop in this project and has not been trusted")
    raise UntrustedModelError(
        f"refusing to load this file: it {why}, and loading a .pt file runs any code it "
        f"contains", path=path,
        hint=hint or f"if you know where it comes from, trust it with `python main.py models "
                     f"trust {path}` (or pass --trust to train)")


def verify_sha256(path: str | Path, expected: str) -> None:
    """ModelIntegrityError when the file is missing or its content is not `expected`."""
    path = Path(path)
    if not path.is_file():
        raise ModelIntegrityError("model file is missing", path=path,
                                  hint="the model folder was moved or deleted; delete the "
                                       "version with `models delete ID` or import it again")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"model file changed since it was registered (sha256 {actual[:12]}…, recorded "
            f"{expected[:12]}…); refusing to load it", path=path,
            hint="restore the original file, or import the file again as a new version")


# -- the gate every load site asks -----------------------------------------------------------

class _Gate:
    def __init__(self, conn: sqlite3.Connection, hint: str | None) -> None:
        self.conn, self.hint = conn, hint


@contextmanager
def gate(conn: sqlite3.Connection, *, hint: str | None = None) -> Iterator[None]:
    """Within this block, `check_before_unpickle` refuses files the store does not trust."""
    token = _gate.set(_Gate(conn, hint))
    try:
        yield
    finally:
        _gate.reset(token)


def check_before_unpickle(path: str | Path) -> None:
    """Call right before unpickling `path` (YOLO(path), torch_load, ...)."""
    current = _gate.get()
    if current is None or not Path(path).is_file() or not needs_trust(path):
        return
    require_trusted(current.conn, path, hint=current.hint)


def record_if_gated(path: str | Path, origin: str = "run") -> None:
    """A load site's own writer: trust what LabelLoop just wrote, when a store is listening."""
    current = _gate.get()
    if current is not None and Path(path).is_file():
        record_written(current.conn, path, origin)


# -- what a training would unpickle ---------------------------------------------------------

RESUME_CHECKPOINTS = ("interrupted.pt", "last.pt")   # what a YOLO resume may unpickle


def training_inputs(weights: str | None = None, run_dir: Path | None = None,
                    model_type: str = "yolo", base_file: Path | None = None) -> list[Path]:
    """Pickles a training would load: its explicit base `weights` file or the models/base/
    file it falls back to, or (resume) the run's checkpoints. timm checkpoints and base
    weights load with weights_only=True and need no trust."""
    if run_dir is not None:
        if model_type != "yolo":
            return []
        return [p for p in (Path(run_dir) / "weights" / n for n in RESUME_CHECKPOINTS)
                if p.is_file()]
    if weights and not weights.startswith("model:"):
        path = Path(weights).expanduser()
        return [path] if path.is_file() and needs_trust(path) and model_type == "yolo" else []
    return [base_file] if base_file is not None and base_file.is_file() else []


def check_training_inputs(conn: sqlite3.Connection, paths: list[Path], *,
                          resume_run: int | None = None) -> None:
    """Refuse, before the run is recorded or started, any untrusted file it would unpickle."""
    flag = f"train --resume {resume_run} --trust" if resume_run is not None else \
        "train ... --trust"
    for path in paths:
        require_trusted(conn, path, hint=f"if you know where this file comes from, run "
                                         f"`python main.py {flag}` to trust it")


def trust_paths(conn: sqlite3.Connection, paths: list[Path]) -> None:
    for path in paths:
        trust_file(conn, path)


def load_tensors(path: str | Path, map_location="cpu"):
    """A state dict or checkpoint of tensors and plain values, never running pickled code."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path), device=str(map_location))
    import torch
    return torch.load(path, map_location=map_location, weights_only=True)
