"""YOLO training (detect / segment / classify) on ultralytics, with LoRA, events and control.

`train_yolo` runs `YOLO(base).train(trainer=<subclass>)`. The subclass (built per task by
`trainer_class`) injects LoRA adapters in `get_model`, re-freezes the base after ultralytics'
freeze loop, writes checkpoints atomically, writes a resumable checkpoint of its own when a
stop is requested mid-epoch, and merges the adapters before ultralytics' final evaluation
(which fuses Conv+BN, impossible with unmerged adapters). Ultralytics callbacks are bridged
to our EventBus with the payload keys of src/training/events.py.

Multi-GPU ('0,1') is handed to ultralytics' DDP launcher, which re-runs the trainer in child
processes: the EventBus bridge and RunControl do not reach those processes (untested here).
"""
from __future__ import annotations

import os
import time
from copy import deepcopy
from datetime import datetime
from pathlib import Path

from src.atomic_files import copy_atomic, torch_save_atomic
from src.db.project import default_models_dir
from src.errors import DatasetError, TrainingError
from src.training.augment_settings import training_augment
from src.training.base_model import resolve_yolo_base
from src.training.control import RunControl
from src.training.device import resolve_device
from src.training.events import EventBus
from src.training.lora import (adapter_targets, freeze_base, frozen_modules_eval, has_lora,
                               inject_lora, merge_lora, param_counts, save_adapters,
                               yolo_head_prefixes)
from src.training.outcome import TrainOutcome
from src.training.trust import check_before_unpickle

INTERRUPTED = "interrupted.pt"      # our resumable checkpoint, written on a stop request
_RAW_STATE = "labelloop_model_state"  # live (non-EMA) weights, so a resume continues exactly
_OPTIMIZERS = {"auto": "auto", "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "nadam": "NAdam",
               "radam": "RAdam", "rmsprop": "RMSprop"}
_PREDICTION_SAMPLES = 8  # validation images in TensorBoard's prediction grid


class _Cancelled(Exception):
    """Raised from a batch callback to leave ultralytics' loop at once (no val, no final eval)."""

    def __init__(self, checkpoint: Path, epoch: int) -> None:
        super().__init__(f"stopped in epoch {epoch}, checkpoint {checkpoint}")
        self.checkpoint, self.epoch = checkpoint, epoch


def train_yolo(cfg, data: Path, run_dir: Path, bus: EventBus, control: RunControl,
               resume: bool = False, *, project=None, base_dir: Path | None = None) -> TrainOutcome:
    """Train a YOLO model per `cfg` on `data` (data.yaml, or an ImageFolder root for classify).

    Returns status 'completed' or 'cancelled' (stop requested: `last_checkpoint` resumes it).
    One attempt: `src.training.trainers.create_trainer(cfg).train(...)` adds the
    out-of-memory retry.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data_arg = _data_arg(cfg.task, Path(data))
    device = ultralytics_device(cfg.device)
    base_dir = Path(base_dir) if base_dir else default_models_dir() / "base"
    return _train_once(cfg, data_arg, run_dir, bus, control, resume, device, project, base_dir)


def ultralytics_device(spec: str) -> str:
    """Our device spec → ultralytics' ('cpu', 'mps', '0', '0,1'); TrainingError if absent."""
    resolved = resolve_device(spec)
    if not resolved.startswith("cuda"):
        return resolved
    spec = str(spec).strip().lower()
    return spec if "," in spec else resolved.partition(":")[2]


def resumable_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint in run_dir/weights that still holds optimizer state."""
    from ultralytics.utils.patches import torch_load

    weights = Path(run_dir) / "weights"
    candidates = [p for p in (weights / INTERRUPTED, weights / "last.pt") if p.is_file()]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        check_before_unpickle(path)
        ckpt = torch_load(path, map_location="cpu")
        if ckpt.get("optimizer") is not None:
            return path
    return None


def trainer_class(task: str, lora, repeat_factor_threshold: float = 0.0):
    """The ultralytics trainer of `task` with our behaviour mixed in, carrying `lora` settings
    (and repeat-factor sampling of the training images when the threshold is above 0)."""
    from ultralytics.models.yolo.classify import ClassificationTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.models.yolo.segment import SegmentationTrainer

    bases = {"detect": (DetectionTrainer,), "segment": (SegmentationTrainer,),
             "classify": (_TopOneFitness, ClassificationTrainer)}
    return type(f"LabelLoop{bases[task][-1].__name__}",
                (_RepeatFactorSampling, _LabelLoopTrainer, *bases[task]),
                {"lora": lora, "repeat_factor_threshold": repeat_factor_threshold})


class _RepeatFactorSampling:
    """Training images drawn by `RepeatFactorSampler` (class attribute
    `repeat_factor_threshold`; 0 = ultralytics' own shuffled loader).

    Hooks `get_dataloader` (ultralytics builds its train loader there, then ours replaces its
    sampler, keeping its workers, collate function and seeding) and `_setup_train` (the epoch
    a resume starts at is known only after it). Single process only: under DDP each rank
    needs a shard of the draw, so ultralytics' DistributedSampler stays.
    """

    repeat_factor_threshold = 0.0
    repeat_factor_summary = ""

    def get_dataloader(self, dataset_path, batch_size=16, rank=0, mode="train"):
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        if mode != "train" or self.repeat_factor_threshold <= 0 or rank != -1:
            return loader
        from src.training.sampling import RepeatFactorSampler, repeat_factors

        factors = repeat_factors(_image_classes(loader.dataset), self.repeat_factor_threshold)
        sampler = RepeatFactorSampler(factors, seed=self.args.seed)
        sampler.set_epoch(getattr(self, "epoch", 0))   # an OOM retry rebuilds mid-run
        self.repeat_factor_summary = (
            f"repeat-factor sampling (threshold {self.repeat_factor_threshold:g}): "
            f"{int((factors > 1).sum())} of {len(factors)} training images repeated (up to "
            f"x{factors.max():.2f}); {len(sampler)} images per epoch")
        return _loader_with_sampler(loader, sampler)

    def _setup_train(self):
        super()._setup_train()
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch") and not hasattr(sampler, "num_replicas"):
            sampler.set_epoch(self.start_epoch)   # a resumed run continues the epochs' draws


def _image_classes(dataset) -> list[list[int]]:
    """Classes in each image of an ultralytics dataset (YOLODataset or ClassificationDataset)."""
    if hasattr(dataset, "labels"):
        return [label["cls"].reshape(-1).astype(int).tolist() for label in dataset.labels]
    return [[int(sample[1])] for sample in dataset.samples]


def _loader_with_sampler(loader, sampler):
    """ultralytics' InfiniteDataLoader as `loader` was built, drawing indices from `sampler`."""
    from ultralytics.data.build import InfiniteDataLoader

    workers = loader.num_workers
    return InfiniteDataLoader(
        dataset=loader.dataset, batch_size=loader.batch_size, sampler=sampler,
        num_workers=workers, prefetch_factor=loader.prefetch_factor if workers else None,
        pin_memory=loader.pin_memory, collate_fn=loader.collate_fn,
        worker_init_fn=loader.worker_init_fn, generator=loader.generator,
        drop_last=loader.drop_last)


class _LabelLoopTrainer:
    """Mixed into an ultralytics task trainer (class attribute `lora`: LoraSettings)."""

    lora = None
    lora_targets: list[str] = []
    trainable_prefixes: tuple[str, ...] = ()
    params: dict = {}
    adapter_dir: Path | None = None
    in_final_eval = False
    _best_state: dict | None = None

    def get_model(self, cfg=None, weights=None, verbose=True):
        """Build the model; with LoRA, inject adapters (before loading an adapted checkpoint)."""
        if weights is not None and has_lora(weights):
            if not self.lora.enabled:
                raise TrainingError("the checkpoint has LoRA adapters but lora.enabled is false",
                                    field="lora.enabled",
                                    hint="resume with the run's own config.yaml")
            model = super().get_model(cfg=cfg, weights=None, verbose=verbose)
            self._add_adapters(model)
            model.load_state_dict(weights.float().state_dict(), strict=True)
            return model
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        if self.lora.enabled:
            self._add_adapters(model)
        return model

    def _add_adapters(self, model) -> None:
        head = yolo_head_prefixes(model)
        targets = adapter_targets(model, self.lora, head)
        inject_lora(model, self.lora, targets)
        self.lora_targets = targets
        self.trainable_prefixes = head if self.lora.train_head else ()

    def _setup_train(self):
        super()._setup_train()
        if has_lora(self.model):
            # ultralytics' freeze loop just set requires_grad on every base tensor
            freeze_base(self.model, self.trainable_prefixes)
        self.params = param_counts(self.model)

    def get_validator(self):
        validator = super().get_validator()
        if self.args.task != "classify":
            _count_confusion_without_plots(validator)
        return validator

    def _model_train(self):
        super()._model_train()
        if has_lora(self.model):
            frozen_modules_eval(self.model)

    def save_model(self):
        """ultralytics' checkpoints, written to temp files and renamed into place."""
        final = (self.last, self.best)
        self.last, self.best = (p.with_name(f".{p.name}.tmp") for p in final)
        try:
            saved = super().save_model()
            written = (self.last, self.best)
        finally:
            self.last, self.best = final
        for tmp, path in zip(written, final):
            if tmp.exists():
                os.replace(tmp, path)
        if self.best_fitness == self.fitness and has_lora(self.ema.ema):
            # checkpoints are fp16; keep the best adapters at full precision for the export
            self._best_state = {k: v.detach().clone() for k, v in self.ema.ema.state_dict().items()}
        return saved

    def save_interrupted(self) -> Path:
        """A resumable checkpoint of the run as it is now: it resumes at the current epoch."""
        from ultralytics import __version__

        ema = deepcopy(self.ema.ema).float()
        if hasattr(ema, "criterion"):
            ema.criterion = None
        model_state = {k: v.detach().clone().cpu()
                       for k, v in _unwrap(self.model).state_dict().items()}
        ckpt = {"epoch": self.epoch - 1, "best_fitness": self.best_fitness,
                "stopper": {"best_fitness": self.stopper.best_fitness,
                            "best_epoch": self.stopper.best_epoch},
                "model": None, "ema": ema, "updates": self.ema.updates,
                "optimizer": deepcopy(self.optimizer.state_dict()),
                "scaler": self.scaler.state_dict(), "train_args": vars(self.args),
                "train_metrics": {**(self.metrics or {}), "fitness": self.fitness},
                _RAW_STATE: model_state, "date": datetime.now().astimezone().isoformat(),
                "version": __version__}
        path = self.wdir / INTERRUPTED
        torch_save_atomic(ckpt, path)
        return path

    def resume_training(self, ckpt):
        """ultralytics' resume, also from a stop in the first epoch, restoring the live weights."""
        if ckpt is None or not self.resume:
            return
        start_epoch = ckpt.get("epoch", -1) + 1
        if not 0 <= start_epoch < self.epochs:
            raise TrainingError(f"{self.args.model} finished all {self.epochs} epochs; nothing "
                                f"to resume", hint="start a new run instead")
        self._load_checkpoint_state(ckpt)
        if ckpt.get(_RAW_STATE):
            _unwrap(self.model).load_state_dict(ckpt[_RAW_STATE])
        self.start_epoch = start_epoch

    def final_eval(self):
        """Export and merge adapters into best.pt first: ultralytics then fuses and validates it."""
        if has_lora(self.model) and self.best.exists():
            self._export_adapters()
        self.in_final_eval = True
        try:
            super().final_eval()
        finally:
            self.in_final_eval = False

    def _export_adapters(self) -> None:
        from ultralytics.utils.patches import torch_load

        check_before_unpickle(self.best)
        ckpt = torch_load(self.best, map_location="cpu")
        model = ckpt["ema"].float()
        if self._best_state is not None:
            model = deepcopy(self.ema.ema).float().cpu()
            model.load_state_dict(self._best_state)
        if hasattr(model, "criterion"):
            model.criterion = None
        self.adapter_dir = save_adapters(
            model, self.save_dir / "adapters", self.lora, self.lora_targets,
            self.trainable_prefixes, extra={"base": str(self.args.model), "task": self.args.task})
        ckpt["ema"] = merge_lora(model).half()
        torch_save_atomic(ckpt, self.best)


def _count_confusion_without_plots(validator) -> None:
    """Detection validators fill their confusion matrix only when plotting; fill it anyway
    (plotting every validation would cost seconds per epoch). The first batch of each
    validation is also kept as `validator.prediction_samples` for TensorBoard's grid."""
    update = validator.update_metrics
    validator.prediction_samples = []

    def update_metrics(preds, batch):
        if validator.seen == 0:      # first batch of this validation (init_metrics resets it)
            validator.prediction_samples = _detection_samples(validator, preds, batch)
        update(preds, batch)
        if not validator.args.plots:
            for si, pred in enumerate(preds):
                validator.confusion_matrix.process_batch(
                    validator._prepare_pred(pred), validator._prepare_batch(si, batch),
                    conf=validator.args.conf)
    validator.update_metrics = update_metrics


def _detection_samples(validator, preds, batch, limit: int = _PREDICTION_SAMPLES) -> list[dict]:
    """Ground truth and predictions (conf >= 0.25) of a few validation images, in the pixels of
    the original image files: {'path', 'boxes': [[x1, y1, x2, y2, cls]], 'pred_boxes':
    [[x1, y1, x2, y2, cls, conf]]} — plain lists, so they travel as JSON events too."""
    from ultralytics.utils import ops

    samples = []
    for si, pred in enumerate(preds[:limit]):
        truth = validator._prepare_batch(si, batch)

        def native(boxes):
            return ops.scale_boxes(truth["imgsz"], boxes.clone().float(), truth["ori_shape"],
                                   ratio_pad=truth["ratio_pad"]).tolist()
        keep = pred["conf"] >= 0.25
        samples.append({
            "path": str(batch["im_file"][si]),
            "boxes": [[*b, int(c)] for b, c in zip(native(truth["bboxes"]), truth["cls"].tolist())],
            "pred_boxes": [[*b, int(c), round(float(p), 3)] for b, c, p in zip(
                native(pred["bboxes"][keep]), pred["cls"][keep].tolist(),
                pred["conf"][keep].tolist())]})
    return samples


class _TopOneFitness:
    """Classify: pick the best checkpoint by top-1 accuracy (ultralytics averages top-1/top-5)."""

    def validate(self):
        metrics = self.validator(self)
        if metrics is None:
            return None, None
        metrics.pop("fitness", None)
        fitness = float(metrics["metrics/accuracy_top1"])
        if self.best_fitness is None or self.best_fitness < fitness:
            self.best_fitness = fitness
        return metrics, fitness


class _EventBridge:
    """ultralytics callbacks → EventBus events; RunControl checked between batches."""

    def __init__(self, bus: EventBus, control: RunControl, run_dir: Path, notes: list[str]):
        self.bus, self.control, self.run_dir, self.notes = bus, control, run_dir, notes
        self.t0 = time.time()
        self.batch = 0
        self.batches_done = 0
        self.pending_save: dict | None = None

    def attach(self, model) -> None:
        for event in ("on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start",
                      "on_train_epoch_start", "on_train_batch_start", "on_train_batch_end",
                      "on_train_epoch_end", "on_fit_epoch_end", "on_model_save"):
            model.add_callback(event, getattr(self, event))

    def on_pretrain_routine_start(self, trainer) -> None:
        self.bus.emit("on_pretrain_routine_start", epochs=trainer.epochs,
                      run_dir=str(self.run_dir), message="; ".join(self.notes))

    def on_pretrain_routine_end(self, trainer) -> None:
        batches = len(trainer.train_loader)
        self.bus.emit("on_pretrain_routine_end", epochs=trainer.epochs, batches=batches,
                      run_dir=str(self.run_dir),
                      message=f"{trainer.args.task}: {len(trainer.train_loader.dataset)} training "
                              f"images, {batches} batches per epoch on {trainer.device}")

    def on_train_start(self, trainer) -> None:
        self.t0 = time.time()
        p = trainer.params
        self.bus.emit("on_train_start", epoch=trainer.start_epoch, epochs=trainer.epochs,
                      batches=len(trainer.train_loader), params=dict(p),
                      run_dir=str(self.run_dir),
                      message=f"training {p['trainable']:,} of {p['total']:,} parameters "
                              f"({p['share']:.1%})")

    def on_train_epoch_start(self, trainer) -> None:
        self.batch = 0
        self._check_stop(trainer)
        self.bus.emit("on_train_epoch_start", epoch=trainer.epoch, epochs=trainer.epochs,
                      batches=len(trainer.train_loader))

    def on_train_batch_start(self, trainer) -> None:
        self.bus.emit("on_train_batch_start", epoch=trainer.epoch, epochs=trainer.epochs,
                      batch=self.batch, batches=len(trainer.train_loader))

    def on_train_batch_end(self, trainer) -> None:
        batches = len(trainer.train_loader)
        self.batches_done += 1
        elapsed = time.time() - self.t0
        left = (trainer.epochs - trainer.epoch) * batches - self.batch - 1
        self.bus.emit("on_train_batch_end", epoch=trainer.epoch, epochs=trainer.epochs,
                      batch=self.batch, batches=batches, losses=_losses(trainer),
                      lr=_lr(trainer), elapsed_s=elapsed,
                      eta_s=elapsed / self.batches_done * max(left, 0))
        self.batch += 1
        self._check_stop(trainer)

    def on_train_epoch_end(self, trainer) -> None:
        elapsed = time.time() - self.t0
        left = (trainer.epochs - trainer.epoch - 1) * len(trainer.train_loader)
        self.bus.emit("on_train_epoch_end", epoch=trainer.epoch, epochs=trainer.epochs,
                      losses=_losses(trainer), lr=_lr(trainer), elapsed_s=elapsed,
                      eta_s=elapsed / max(self.batches_done, 1) * left)

    def on_fit_epoch_end(self, trainer) -> None:
        if trainer.in_final_eval:   # ultralytics fires it again for the best model's final eval
            return
        eta = (trainer.epoch_time or 0.0) * (trainer.epochs - trainer.epoch - 1)
        self.bus.emit("on_fit_epoch_end", epoch=trainer.epoch, epochs=trainer.epochs,
                      losses=_losses(trainer), metrics=_floats(trainer.metrics),
                      fitness=_float(trainer.fitness), lr=_lr(trainer),
                      elapsed_s=time.time() - self.t0, eta_s=eta,
                      samples=getattr(trainer.validator, "prediction_samples", []),
                      **confusion(trainer))
        if self.pending_save is not None:
            self.bus.emit("on_model_save", **self.pending_save)
            self.pending_save = None

    def on_model_save(self, trainer) -> None:
        # ultralytics saves before its on_fit_epoch_end; the contract (and the timm trainer)
        # has the epoch's record first, then the save: hold it until on_fit_epoch_end
        self.pending_save = dict(epoch=trainer.epoch, epochs=trainer.epochs,
                                 run_dir=str(self.run_dir),
                                 best=bool(trainer.best_fitness == trainer.fitness),
                                 message=f"saved {trainer.last}")

    def _check_stop(self, trainer) -> None:
        if self.control.checkpoint():   # blocks while paused
            raise _Cancelled(trainer.save_interrupted(), trainer.epoch)


def _train_once(cfg, data_arg: Path, run_dir: Path, bus: EventBus, control: RunControl,
                resume: bool, device: str, project, base_dir: Path) -> TrainOutcome:
    from ultralytics import YOLO

    if resume:
        checkpoint = resumable_checkpoint(run_dir)
        if checkpoint is None:
            raise TrainingError("nothing to resume: no checkpoint with optimizer state",
                                path=run_dir / "weights", hint="start a new run instead")
        source, message = str(checkpoint), f"resuming from {checkpoint}"
    else:
        source, message = resolve_yolo_base(cfg, base_dir, project)
    run_notes = [message, *imbalance_notes(cfg)]
    if "," in device:
        run_notes.append("multi-GPU (DDP): ultralytics trains in worker processes; progress "
                         "events, pause and stop do not reach them")
    check_before_unpickle(source)
    model = YOLO(source, task=cfg.task)
    bridge = _EventBridge(bus, control, run_dir, run_notes)
    if "," not in device:   # DDP pickles the callbacks; a bus or a lock does not pickle
        bridge.attach(model)
    args = ultralytics_overrides(cfg, data_arg, run_dir, device)
    if resume:
        args["resume"] = source
    try:
        model.train(trainer=trainer_class(cfg.task, cfg.lora,
                                          cfg.imbalance.repeat_factor_threshold), **args)
    except _Cancelled as stop:
        _close_loaders(model.trainer)
        return _cancelled(model.trainer, stop, bus, run_dir, message, bridge.t0)
    except BaseException:
        _close_loaders(model.trainer)
        raise
    run_notes.append(model.trainer.repeat_factor_summary)   # the factors it really used
    outcome = _completed(model.trainer, run_dir, "; ".join(filter(None, run_notes)))
    bus.emit("on_train_end", status="completed", epoch=outcome.epochs_done - 1,
             epochs=model.trainer.epochs, metrics=outcome.metrics, run_dir=str(run_dir),
             elapsed_s=time.time() - bridge.t0, message=f"merged model: {outcome.merged_model}")
    return outcome


def imbalance_notes(cfg) -> list[str]:
    """What the YOLO trainer does with cfg.imbalance (and optimizer auto), in words, for the
    run message; the report lists the same (src/training/reporting.py)."""
    from src.training.reporting import imbalance_effects

    notes = []
    if cfg.optimizer == "auto":
        notes.append("optimizer auto: ultralytics picks the optimizer and its learning rate "
                     "(lr is ignored); set optimizer to use lr")
    effects = imbalance_effects(cfg)
    return notes + effects["applied"] + effects["ignored"]


def ultralytics_overrides(cfg, data_arg: Path, run_dir: Path, device: str) -> dict:
    """The ultralytics train() arguments a TrainConfig maps to: our defaults, the augmentation
    of configs/augment.yaml, then the config's `yolo:` section (any `yolo train` argument,
    already checked by ultralytics); the keys LabelLoop owns last."""
    on_cpu = device in ("cpu", "mps")
    defaults = dict(
        nbs=cfg.batch,          # a tiny dataset must still step the optimizer every batch
        amp=not on_cpu, plots=False, verbose=False, val=True,
        cls_pw=1.0 if cfg.imbalance.class_weights and cfg.task != "classify" else 0.0)
    ours = dict(
        data=str(data_arg), epochs=cfg.epochs, batch=cfg.batch, imgsz=_round32(cfg.imgsz),
        lr0=cfg.lr, optimizer=_OPTIMIZERS[cfg.optimizer], weight_decay=cfg.weight_decay,
        warmup_epochs=cfg.warmup_epochs, patience=cfg.patience, seed=cfg.seed, device=device,
        workers=0 if on_cpu else cfg.workers, save_dir=str(run_dir), exist_ok=True)
    return {**defaults, **training_augment("yolo"), **getattr(cfg, "yolo", {}), **ours}


def _data_arg(task: str, data: Path) -> Path:
    if task == "classify":
        root = data.parent if data.is_file() else data
        if not (root / "train").is_dir():
            raise DatasetError("a classification dataset needs a train/ folder of class "
                               "folders", path=root, hint="build the dataset again")
        return root
    yaml_path = data / "data.yaml" if data.is_dir() else data
    if not yaml_path.is_file():
        raise DatasetError("dataset file not found", path=yaml_path,
                           hint="pass the data.yaml of a built dataset")
    return yaml_path


def _cancelled(trainer, stop: _Cancelled, bus: EventBus, run_dir: Path, message: str,
               t0: float) -> TrainOutcome:
    bus.emit("on_train_end", status="cancelled", epoch=stop.epoch, epochs=trainer.epochs,
             run_dir=str(run_dir), elapsed_s=time.time() - t0,
             message=f"stopped in epoch {stop.epoch}; resumable from {stop.checkpoint}")
    return TrainOutcome(status="cancelled", last_checkpoint=stop.checkpoint,
                        base_model_source=message, epochs_done=stop.epoch,
                        params=dict(trainer.params))


def _close_loaders(trainer) -> None:
    """Stop dataloader workers of a run that left ultralytics' loop by an exception."""
    for loader in (getattr(trainer, "train_loader", None), getattr(trainer, "test_loader", None)):
        if hasattr(loader, "close"):
            loader.close()


def _completed(trainer, run_dir: Path, message: str) -> TrainOutcome:
    best, last = Path(trainer.best), Path(trainer.last)
    merged = run_dir / "model.pt"
    copy_atomic(best if best.exists() else last, merged)
    (Path(trainer.wdir) / INTERRUPTED).unlink(missing_ok=True)
    metrics = _floats(trainer.metrics)
    per_class, extra = _per_class(trainer)
    return TrainOutcome(status="completed", best_checkpoint=best, last_checkpoint=last,
                        merged_model=merged, adapter_dir=trainer.adapter_dir,
                        metrics={**metrics, **extra}, per_class=per_class,
                        params=dict(trainer.params), base_model_source=message,
                        epochs_done=trainer.epoch + 1)


def confusion(trainer) -> dict:
    """{'confusion_matrix': rows true, columns predicted; 'class_names'} of the last validation.

    Detection matrices carry a last 'background' row (false positives) and column (missed
    objects). Empty before the first validation.
    """
    matrix = getattr(getattr(trainer.validator, "confusion_matrix", None), "matrix", None)
    if matrix is None or not matrix.any():
        return {}
    names = _class_names(trainer)
    if len(matrix) == len(names) + 1:
        names.append("background")
    return {"confusion_matrix": matrix.T.round().astype(int).tolist(), "class_names": names}


def _final_confusion(trainer) -> dict:
    """confusion() for the outcome: 'confusion_labels' are the matrix's rows (with
    'background' for detection); 'class_names' stay the model's classes."""
    found = confusion(trainer)
    if found:
        found["confusion_labels"] = found.pop("class_names")
    return found


def _class_names(trainer) -> list[str]:
    return [str(n) for n in dict(trainer.data["names"]).values()]


def _per_class(trainer) -> tuple[dict, dict]:
    names = _class_names(trainer)
    extra = {**_final_confusion(trainer), "class_names": names}
    if trainer.args.task == "classify":
        return _classify_per_class(trainer.validator, names), extra
    return _detect_per_class(trainer.validator.metrics, names), extra


def _detect_per_class(metrics, names: list[str]) -> dict:
    index = {int(c): i for i, c in enumerate(metrics.ap_class_index)}
    seg = getattr(metrics, "seg", None)
    table = {}
    for c, name in enumerate(names):
        i = index.get(c)
        row = {"instances": int(metrics.nt_per_class[c]) if len(metrics.nt_per_class) else 0}
        for key, attr in (("precision", "p"), ("recall", "r"), ("f1", "f1"),
                          ("mAP50", "ap50"), ("mAP50-95", "ap")):
            row[key] = float(getattr(metrics.box, attr)[i]) if i is not None else 0.0
        if seg is not None:
            row["mask_mAP50"] = float(seg.ap50[i]) if i is not None else 0.0
            row["mask_mAP50-95"] = float(seg.ap[i]) if i is not None else 0.0
        table[name] = row
    return table


def _classify_per_class(validator, names: list[str]) -> dict:
    import torch
    from sklearn.metrics import precision_recall_fscore_support

    if not validator.pred:
        return {}
    pred = torch.cat(validator.pred)[:, 0].numpy()
    true = torch.cat(validator.targets).numpy()
    labels = list(range(len(names)))
    p, r, f1, support = precision_recall_fscore_support(true, pred, labels=labels,
                                                        zero_division=0)
    return {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
                   "support": int(support[i])} for i, name in enumerate(names)}


def _unwrap(model):
    from ultralytics.utils.torch_utils import unwrap_model

    return unwrap_model(model)


def _round32(imgsz: int) -> int:
    return max(32, (int(imgsz) + 31) // 32 * 32)


def _losses(trainer) -> dict:
    return trainer.label_loss_items(trainer.tloss, "train") if trainer.tloss else {}


def _lr(trainer) -> float | None:
    return float(trainer.optimizer.param_groups[0]["lr"]) if trainer.optimizer else None


def _float(value) -> float | None:
    return None if value is None else float(value)


def _floats(metrics) -> dict:
    return {k: float(v) for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) or hasattr(v, "__float__")}
