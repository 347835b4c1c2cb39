"""One trainer contract for every model type: `create_trainer(cfg).train(...)`.

A Trainer knows where its base weights come from (src/training/base_model.py), runs one
training attempt (yolo_trainer.py / timm_trainer.py) and, on a CUDA out-of-memory error,
halves the batch and continues from the run's last checkpoint — the same for YOLO and timm.
Both emit the typed events of src/training/events.py and return a TrainOutcome.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from src.errors import ConfigError
from src.training.base_model import resolve_base
from src.training.control import RunControl
from src.training.device import is_out_of_memory
from src.training.events import EventBus
from src.training.outcome import TrainOutcome


class Trainer(ABC):
    """Trains one TrainConfig; subclasses provide one attempt and what "resumable" means."""

    model_type: ClassVar[str] = ""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def base(self, base_dir: Path | None, project=None) -> tuple[str | None, str]:
        """(weights or architecture to start from, a sentence saying which and why)."""
        return resolve_base(self.cfg, base_dir, project)

    def train(self, data: Path, run_dir: Path, bus: EventBus, control: RunControl,
              resume: bool = False, *, project=None,
              base_dir: Path | None = None) -> TrainOutcome:
        """Train on `data` into `run_dir`; 'completed' or 'cancelled' (resumable)."""
        cfg, notes = self.cfg, []
        while True:
            try:
                outcome = self._train_once(cfg, Path(data), Path(run_dir), bus, control,
                                           resume, project, base_dir)
                return _with_notes(outcome, notes)
            except RuntimeError as exc:   # torch.cuda.OutOfMemoryError is a RuntimeError
                if not is_out_of_memory(exc) or cfg.batch <= 1:
                    raise
                notes.append(f"out of memory with batch {cfg.batch}: retrying with batch "
                             f"{cfg.batch // 2}")
                bus.emit("on_pretrain_routine_start", message=notes[-1])
                cfg = replace(cfg, batch=cfg.batch // 2)
                free_accelerator_memory()
                resume = self.resumable(Path(run_dir))

    @abstractmethod
    def _train_once(self, cfg, data: Path, run_dir: Path, bus: EventBus, control: RunControl,
                    resume: bool, project, base_dir: Path | None) -> TrainOutcome:
        """One attempt with `cfg` (its batch may be smaller than self.cfg's after an OOM)."""

    @abstractmethod
    def resumable(self, run_dir: Path) -> bool:
        """Whether run_dir holds a checkpoint this trainer can continue from."""


class YoloTrainer(Trainer):
    model_type = "yolo"

    def _train_once(self, cfg, data, run_dir, bus, control, resume, project, base_dir):
        from src.training.yolo_trainer import train_yolo
        return train_yolo(cfg, data, run_dir, bus, control, resume, project=project,
                          base_dir=base_dir)

    def resumable(self, run_dir: Path) -> bool:
        from src.training.yolo_trainer import resumable_checkpoint
        return resumable_checkpoint(run_dir) is not None


class TimmTrainer(Trainer):
    model_type = "timm"

    def _train_once(self, cfg, data, run_dir, bus, control, resume, project, base_dir):
        from src.training.timm_trainer import train_timm
        weights, message = self.base(base_dir, project)
        return train_timm(cfg, data, run_dir, bus, control, resume, base_weights=weights,
                          base_message=message)

    def resumable(self, run_dir: Path) -> bool:
        return (run_dir / "weights" / "last.pt").is_file()


TRAINERS: dict[str, type[Trainer]] = {cls.model_type: cls for cls in (YoloTrainer, TimmTrainer)}


def create_trainer(cfg) -> Trainer:
    """The trainer of cfg.model_type."""
    if cfg.model_type not in TRAINERS:
        raise ConfigError(f"no trainer for model_type {cfg.model_type!r}", field="model_type",
                          hint=f"use one of {', '.join(TRAINERS)}")
    return TRAINERS[cfg.model_type](cfg)


def _with_notes(outcome: TrainOutcome, notes: list[str]) -> TrainOutcome:
    """The run's message (base model, report) also says what the retries changed."""
    if notes:
        outcome.base_model_source = "; ".join([outcome.base_model_source or "", *notes])
    return outcome


def free_accelerator_memory() -> None:
    """Drop cached CUDA blocks after an out-of-memory error, before the retry."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
