"""Which device trains, and batch/workers sized to it."""
from __future__ import annotations

import os

import torch

from src.errors import TrainingError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    """What `device` may be set to on this machine: auto, cpu and the accelerators found."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def resolve_device(spec: str) -> str:
    """'auto' → cuda, mps, cpu (first available); an explicit GPU that is absent is an error.

    Returns a torch device string ('cpu', 'cuda:0', 'mps'); '0,1' (several GPUs, for
    ultralytics DDP) resolves to the first one, after checking they all exist.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        return "mps" if _mps_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        if not _mps_available():
            raise TrainingError("device 'mps' asked for, but Apple MPS is not available here",
                                field="device", hint="use device=auto or device=cpu")
        return "mps"
    indices = _cuda_indices(spec)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise TrainingError(f"device {spec!r} asked for, but no CUDA GPU is available",
                            field="device",
                            hint="use device=auto or device=cpu, or install a CUDA build of torch")
    missing = [i for i in indices if i >= count]
    if missing:
        raise TrainingError(f"device {spec!r}: GPU {missing[0]} does not exist ({count} found)",
                            field="device", hint=f"use indices 0..{count - 1}")
    return f"cuda:{indices[0]}"


def _cuda_indices(spec: str) -> list[int]:
    if spec == "cuda":
        return [0]
    if spec.startswith("cuda:"):
        return [int(spec[5:])]
    return [int(part) for part in spec.split(",")]


def size_for_device(device: str, batch: int, workers: int) -> tuple[int, int]:
    """(batch, workers) the device can take: CPU caps workers at the cores it has and keeps
    batches modest; GPUs keep the configured batch."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(workers, max(0, (cores or 1) - 1))
    if device == "cpu":
        batch = min(batch, 64)
    return batch, workers


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA (or MPS) out-of-memory error, which a smaller batch may avoid."""
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()
