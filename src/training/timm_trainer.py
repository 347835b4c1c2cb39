"""timm image classifiers (resnet18, efficientnet_b0, any timm name) with our own loop.

The loop emits the Ultralytics event names with the payload keys of src/training/events.py,
so the DB logger, TensorBoard, the CLI bar and the GUI treat YOLO and timm runs alike.
Cooperative control: `control.checkpoint()` after every batch (pause blocks there; a stop
writes a resumable checkpoint and returns 'cancelled'). Resume restarts the interrupted
epoch with the saved model/optimizer/scheduler state, so epoch numbers never shift.
Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel with a
DistributedSampler; rank 0 alone emits events and writes files.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.distributed as torch_dist
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import random_seed
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from src.atomic_files import atomic_path, torch_save_atomic, write_text_atomic
from src.errors import ConfigError, TrainingError
from src.training import distributed as dist
from src.training.config import TrainConfig
from src.training.control import RunControl
from src.training.device import resolve_device, size_for_device
from src.training.events import EventBus
from src.training.augment_settings import training_augment
from src.training.base_model import resolve_timm_base
from src.training.image_folder import ClassifySplits, ImageClassDataset, load_splits
from src.training.lora import param_counts
from src.training.losses import build_loss
from src.training.metrics import classification_metrics, scalar_metrics
from src.training.outcome import TrainOutcome
from src.training.sampling import balanced_sampler

MODEL_FILE = "model.safetensors"
MODEL_CONFIG = "model_config.json"
_PREDICTION_SAMPLES = 16


@dataclass
class _Progress:
    """What a checkpoint needs besides tensors to continue a run exactly where it stopped."""
    next_epoch: int = 0
    best_fitness: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    elapsed_s: float = 0.0


def create_classifier(cfg: TrainConfig, num_classes: int, weights: str | None) -> nn.Module:
    """timm.create_model, loading local pretrained weights when given; a head of another
    size is re-initialised by timm."""
    try:
        if weights is None:
            return timm.create_model(cfg.model, pretrained=False, num_classes=num_classes)
        return timm.create_model(cfg.model, pretrained=True, num_classes=num_classes,
                                 pretrained_cfg_overlay=dict(file=str(weights)))
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ConfigError(f"timm has no model {cfg.model!r}", field="model",
                              hint="see timm.list_models(), e.g. resnet18, efficientnet_b0"
                              ) from None
        raise ConfigError(f"cannot load weights {weights} into {cfg.model} ({exc})",
                          field="weights", hint="use weights trained for this architecture"
                          ) from None


def head_prefix(model: nn.Module) -> str:
    """The classifier module's name ('fc' for resnet, 'classifier' for efficientnet)."""
    name = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "head"
    return name


def apply_lora(model: nn.Module, cfg: TrainConfig) -> list[str]:
    """Inject adapters, freeze the base, keep the head trainable; returns the targets."""
    from src.training import lora
    targets = lora.adapter_targets(model, cfg.lora, (head_prefix(model) + ".",))
    lora.inject_lora(model, cfg.lora, targets)
    lora.freeze_base(model, _trainable_prefixes(cfg, model))
    return targets


def _trainable_prefixes(cfg: TrainConfig, model: nn.Module) -> tuple[str, ...]:
    return (head_prefix(model) + ".",) if cfg.lora.train_head else ()


def train_timm(cfg: TrainConfig, data: Path, run_dir: Path, bus: EventBus, control: RunControl,
               resume: bool = False, *, base_weights: str | None = None,
               base_message: str = "") -> TrainOutcome:
    """Train a timm classifier on an ImageFolder dataset; see the module docstring."""
    return _TimmRun(cfg, Path(data), Path(run_dir), bus, control, base_weights,
                    base_message).run(resume)


class _TimmRun:
    def __init__(self, cfg, data, run_dir, bus, control, base_weights, base_message) -> None:
        self.cfg, self.run_dir, self.bus, self.control = cfg, run_dir, bus, control
        self.world = dist.world()
        self.device = torch.device(dist.device_for_rank(self.world, resolve_device(cfg.device)))
        random_seed(cfg.seed, self.world.rank)
        self.splits: ClassifySplits = load_splits(data)
        self.names = self.splits.class_names
        if base_weights is None and not base_message:
            base_weights, base_message = resolve_timm_base(cfg, None)
        self.base_message = base_message
        self.model = create_classifier(cfg, len(self.names), base_weights)
        self.data_config = data_config(self.model, cfg.imgsz)
        self.targets = apply_lora(self.model, cfg) if cfg.lora.enabled else []
        self.params = param_counts(self.model)
        self.model.to(self.device)
        self.batch, self.workers = size_for_device(self.device.type, cfg.batch, cfg.workers)
        self.train_loader, self.train_sampler = self._train_loader()
        self.val_set = self._dataset("val", train=False)
        self.loss_fn = build_loss(cfg.imbalance, self.splits.counts("train")).to(self.device)
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer, len(self.train_loader))
        self.progress = _Progress()
        self.weights_dir = run_dir / "weights"
        self.net = self.model
        self.stop_reason = ""
        self.t0 = time.monotonic()

    @property
    def main(self) -> bool:
        return self.world.rank == 0

    def emit(self, event: str, **payload) -> None:
        if self.main:
            self.bus.emit(event, **payload)

    # -- setup -----------------------------------------------------------------------------

    def _dataset(self, split: str, train: bool) -> ImageClassDataset:
        """A split with timm's transform for this backbone (augmented when `train`)."""
        augment = training_augment("timm") if train else {}
        return ImageClassDataset(self.splits.samples[split], self.cfg.imgsz, train=train,
                                 transform=build_transform(self.data_config, train, augment))

    def _train_loader(self):
        cfg = self.cfg
        train_set = self._dataset("train", train=True)
        sampler = None
        if self.world.size > 1:
            sampler = DistributedSampler(train_set, num_replicas=self.world.size,
                                         rank=self.world.rank, shuffle=True, seed=cfg.seed)
        elif cfg.imbalance.balanced_sampler:
            sampler = balanced_sampler(train_set.labels, seed=cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(train_set, batch_size=self.batch, shuffle=sampler is None,
                            sampler=sampler, num_workers=self.workers, drop_last=False,
                            generator=self.generator, persistent_workers=self.workers > 0)
        return loader, sampler

    def _load_checkpoint(self) -> None:
        path = self.weights_dir / "last.pt"
        if not path.is_file():
            raise TrainingError("nothing to resume: no weights/last.pt in the run folder",
                                path=self.run_dir, hint="start a new run instead")
        ckpt = _load_checkpoint_file(path, self.device)
        if ckpt.get("class_names") != self.names:
            raise TrainingError(f"the dataset's classes changed since this run started "
                                f"({ckpt.get('class_names')} → {self.names})", path=path,
                                hint="resume with the same dataset version, or start a new run")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.progress = _Progress(**ckpt["progress"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        if rng.get("python") is not None:   # timm's random crops draw from `random`
            random.setstate(rng["python"])
            np.random.set_state(_numpy_state_array(rng["numpy"]))
        self.generator.set_state(rng["loader"])
        if rng.get("sampler") is not None:
            self.train_sampler.generator.set_state(rng["sampler"])
        self.t0 = time.monotonic() - self.progress.elapsed_s

    # -- the loop --------------------------------------------------------------------------

    def run(self, resume: bool) -> TrainOutcome:
        if resume:
            self._load_checkpoint()
        self.first_epoch, self.session_t0 = self.progress.next_epoch, time.monotonic()
        if self.world.size > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model)
        cfg = self.cfg
        message = (f"{self.base_message}; {len(self.names)} classes, train "
                   f"{len(self.splits.samples['train'])} / val {len(self.splits.samples['val'])} "
                   f"images, trainable {self.params['trainable']:,} of {self.params['total']:,} "
                   f"parameters on {self.device}")
        batches = len(self.train_loader)
        self.emit("on_pretrain_routine_end", epochs=cfg.epochs, batches=batches,
                  message=message, run_dir=str(self.run_dir))
        self.emit("on_train_start", epoch=self.progress.next_epoch, epochs=cfg.epochs,
                  batches=batches, params=dict(self.params), run_dir=str(self.run_dir),
                  message=message)
        for epoch in range(self.progress.next_epoch, cfg.epochs):
            if not self._train_epoch(epoch):
                return self._cancelled(epoch)
            if self._end_epoch(epoch):
                break
        return self._finish()

    def _train_epoch(self, epoch: int) -> bool:
        """One pass over the training data; False when a stop was requested."""
        cfg, batches = self.cfg, len(self.train_loader)
        if self.train_sampler is not None and hasattr(self.train_sampler, "set_epoch"):
            self.train_sampler.set_epoch(epoch)
        self._train_mode()
        self.emit("on_train_epoch_start", epoch=epoch, epochs=cfg.epochs, batches=batches)
        total, seen = 0.0, 0
        # checked before the loader draws this epoch's order, and after every batch: a stop
        # costs at most one batch, and a stop between epochs resumes bit for bit
        if self._should_stop():
            return False
        for i, (images, labels) in enumerate(self.train_loader):
            self.emit("on_train_batch_start", epoch=epoch, epochs=cfg.epochs, batch=i,
                      batches=batches)
            images, labels = images.to(self.device), labels.to(self.device)
            loss = self.loss_fn(self.net(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step_update(epoch * batches + i + 1)
            total += loss.item() * len(labels)
            seen += len(labels)
            self.epoch_loss = total / max(seen, 1)
            self.emit("on_train_batch_end", epoch=epoch, epochs=cfg.epochs, batch=i,
                      batches=batches, losses={"loss": self.epoch_loss}, lr=self._lr(),
                      **self._timing(epoch + (i + 1) / batches))
            if self._should_stop():
                return False
        self.epoch_loss = self._reduce_mean(total, seen)
        return True

    def _end_epoch(self, epoch: int) -> bool:
        """Validate, checkpoint, emit; True when early stopping ends training."""
        cfg, p = self.cfg, self.progress
        lr = self._lr()
        losses = {"loss": self.epoch_loss}
        self.emit("on_train_epoch_end", epoch=epoch, epochs=cfg.epochs, losses=losses, lr=lr,
                  **self._timing(epoch + 1))
        stop_early = False
        if self.main:
            metrics, _, samples = self.evaluate(self.val_set)
            fitness = metrics["balanced_accuracy"]
            improved = fitness > p.best_fitness
            if improved:
                p.best_fitness, p.best_epoch, p.bad_epochs = fitness, epoch, 0
            else:
                p.bad_epochs += 1
            # the epoch's record goes out before the checkpoint that moves past it: a kill in
            # between re-runs the epoch on resume and overwrites that record (no gap)
            self.emit("on_fit_epoch_end", epoch=epoch, epochs=cfg.epochs, losses=losses,
                      metrics=scalar_metrics(metrics), fitness=fitness, lr=lr,
                      confusion_matrix=metrics["confusion_matrix"], class_names=self.names,
                      samples=samples, **self._timing(epoch + 1))
            p.next_epoch, p.elapsed_s = epoch + 1, time.monotonic() - self.t0
            self._save_checkpoint(best=improved)
            self.emit("on_model_save", epoch=epoch, epochs=cfg.epochs,
                      run_dir=str(self.run_dir), best=improved,
                      message=f"saved {self.weights_dir / 'last.pt'}"
                              + (" and best.pt" if improved else ""))
            stop_early = bool(cfg.patience) and p.bad_epochs >= cfg.patience
            if stop_early:
                self.stop_reason = (f"early stop after epoch {epoch}: no better validation "
                                    f"balanced accuracy for {cfg.patience} epochs (best "
                                    f"{p.best_fitness:.3f} at epoch {p.best_epoch})")
        p.next_epoch = epoch + 1
        return bool(self.world.broadcast_flag(stop_early))

    def _cancelled(self, epoch: int) -> TrainOutcome:
        self.progress.next_epoch = epoch   # the interrupted epoch runs again on resume
        self.progress.elapsed_s = time.monotonic() - self.t0
        if self.main:
            self._save_checkpoint(best=False)
        self.emit("on_train_end", epoch=epoch, epochs=self.cfg.epochs, status="cancelled",
                  run_dir=str(self.run_dir), elapsed_s=round(self.progress.elapsed_s, 3),
                  message=f"cancelled in epoch {epoch}; resumable from weights/last.pt")
        return TrainOutcome(status="cancelled", last_checkpoint=self.weights_dir / "last.pt",
                            best_checkpoint=self._existing(self.weights_dir / "best.pt"),
                            params=self.params, base_model_source=self.base_message,
                            epochs_done=epoch)

    def _finish(self) -> TrainOutcome:
        outcome = TrainOutcome(status="completed", params=self.params,
                               base_model_source=self.base_message,
                               epochs_done=self.progress.next_epoch,
                               last_checkpoint=self.weights_dir / "last.pt",
                               best_checkpoint=self.weights_dir / "best.pt")
        if self.main:
            best = _load_checkpoint_file(self.weights_dir / "best.pt", self.device)
            self.model.load_state_dict(best["model"])
            split = "test" if self.splits.samples["test"] else "val"
            if self.targets:
                outcome.adapter_dir = self._save_adapters()
            outcome.merged_model = self._save_merged()
            test_set = self._dataset(split, train=False)
            metrics, per_class, _ = self.evaluate(test_set)
            metrics.update(split=split, best_epoch=self.progress.best_epoch,
                           best_val_balanced_accuracy=self.progress.best_fitness)
            outcome.metrics, outcome.per_class = metrics, per_class
        self.emit("on_train_end", epoch=self.progress.next_epoch - 1, epochs=self.cfg.epochs,
                  status="completed", run_dir=str(self.run_dir),
                  elapsed_s=round(time.monotonic() - self.t0, 3),
                  metrics=scalar_metrics(outcome.metrics),
                  message=self.stop_reason or f"completed {self.progress.next_epoch} epochs; "
                  f"best epoch {self.progress.best_epoch}")
        self.world.barrier()
        return outcome

    # -- evaluation and files --------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, dataset: ImageClassDataset) -> tuple[dict, dict, list[dict]]:
        """Metrics, per-class metrics and a few predictions (for the TensorBoard grid)."""
        self.model.eval()
        loader = DataLoader(dataset, batch_size=self.batch, shuffle=False, num_workers=0)
        probs, labels = [], []
        for images, target in loader:
            probs.append(torch.softmax(self.model(images.to(self.device)), 1).float().cpu())
            labels.append(target)
        self._train_mode()
        prob = torch.cat(probs).numpy() if probs else np.zeros((0, len(self.names)))
        y = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=int)
        metrics, per_class = classification_metrics(y, prob, self.names)
        samples = [{"path": str(dataset.items[i][0]), "label": int(y[i]),
                    "pred": int(prob[i].argmax()), "conf": float(prob[i].max())}
                   for i in range(min(_PREDICTION_SAMPLES, len(y)))]
        return metrics, per_class, samples

    def _save_checkpoint(self, best: bool) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "progress": asdict(self.progress),
                 "rng": self._rng_states(), "class_names": self.names,
                 "config": asdict(self.cfg), "lora_targets": self.targets}
        torch_save_atomic(state, self.weights_dir / "last.pt")
        if best:
            torch_save_atomic({"model": state["model"], "class_names": self.names,
                                "epoch": self.progress.best_epoch,
                                "fitness": self.progress.best_fitness},
                               self.weights_dir / "best.pt")

    def _save_adapters(self) -> Path:
        from src.training import lora
        return lora.save_adapters(self.model, self.run_dir / "adapters", self.cfg.lora,
                                  self.targets, _trainable_prefixes(self.cfg, self.model),
                                  extra={"architecture": self.cfg.model,
                                         "class_names": self.names})

    def _save_merged(self) -> Path:
        """model.safetensors (+ model_config.json): timm.create_model(name, num_classes=k)
        followed by load_state_dict reproduces the trained classifier."""
        from src.training import lora
        if self.targets:
            lora.merge_lora(self.model)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        path = self.run_dir / MODEL_FILE
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"architecture": self.cfg.model})
        config = {"architecture": self.cfg.model, "num_classes": len(self.names),
                  "class_names": self.names, "imgsz": self.cfg.imgsz,
                  "mean": list(self.data_config["mean"]), "std": list(self.data_config["std"]),
                  "interpolation": self.data_config["interpolation"], "resize": "squash",
                  "load": f"timm.create_model({self.cfg.model!r}, num_classes="
                          f"{len(self.names)}).load_state_dict(safetensors.torch."
                          f"load_file('{MODEL_FILE}'))"}
        write_text_atomic(self.run_dir / MODEL_CONFIG, json.dumps(config, indent=2))
        return path

    # -- small helpers ---------------------------------------------------------------------

    def _rng_states(self) -> dict:
        sampler_gen = getattr(self.train_sampler, "generator", None)
        return {"torch": torch.get_rng_state(), "loader": self.generator.get_state(),
                "python": random.getstate(), "numpy": _numpy_state_plain(),
                "sampler": sampler_gen.get_state() if sampler_gen is not None else None}

    def _train_mode(self) -> None:
        self.model.train()
        if self.targets:
            from src.training import lora
            lora.frozen_modules_eval(self.model)   # base BatchNorm statistics stay the base's

    def _should_stop(self) -> bool:
        return self.world.any_flag(self.control.checkpoint())

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _timing(self, epochs_done: float) -> dict:
        """Elapsed time over all sessions; ETA from this session's pace."""
        now = time.monotonic()
        done_here = epochs_done - self.first_epoch
        rate = (now - self.session_t0) / done_here if done_here > 0 else 0.0
        return {"elapsed_s": round(now - self.t0, 3),
                "eta_s": round(rate * max(self.cfg.epochs - epochs_done, 0), 3)}

    def _reduce_mean(self, total: float, seen: int) -> float:
        if self.world.size == 1:
            return total / max(seen, 1)
        t = torch.tensor([total, float(seen)], dtype=torch.float64)
        torch_dist.all_reduce(t)
        return float(t[0] / t[1].clamp(min=1))

    @staticmethod
    def _existing(path: Path) -> Path | None:
        return path if path.is_file() else None


def _numpy_state_plain() -> tuple:
    """numpy's RNG state with its key array as a list: checkpoints must load with
    weights_only=True, which refuses numpy arrays."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return name, keys.tolist(), pos, has_gauss, cached


def _numpy_state_array(state) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached


def _load_checkpoint_file(path: Path, device) -> dict:
    """Our checkpoints hold only tensors and plain values: they load with weights_only=True,
    so a planted last.pt cannot run code (src/training/trust.py)."""
    import pickle

    from src.training.trust import load_tensors
    try:
        return load_tensors(path, map_location=device)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise TrainingError(f"this checkpoint is not one LabelLoop wrote, or it is damaged "
                            f"({type(exc).__name__}); it was not loaded", path=path,
                            hint="start a new run instead") from None


_TIMM_OPTIMIZERS = {"auto": "adamw", "sgd": "sgd", "adam": "adam", "adamw": "adamw",
                    "nadam": "nadam", "radam": "radam", "rmsprop": "rmsprop"}


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """timm's optimizer factory over the trainable parameters (no weight decay on biases and
    norms, as timm does); 'sgd' is timm's Nesterov SGD with momentum 0.9."""
    return create_optimizer_v2(model, opt=_TIMM_OPTIMIZERS[cfg.optimizer], lr=cfg.lr,
                               weight_decay=cfg.weight_decay, momentum=0.9)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, updates_per_epoch: int):
    """timm's cosine schedule, stepped after every batch: linear warm-up over
    cfg.warmup_epochs from lr/100, then cosine down to lr/100 at the last epoch."""
    scheduler, _ = create_scheduler_v2(
        optimizer, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.lr * 0.01,
        warmup_lr=cfg.lr * 0.01, warmup_epochs=cfg.warmup_epochs, step_on_epochs=False,
        updates_per_epoch=max(updates_per_epoch, 1))
    return scheduler


def data_config(model: nn.Module, imgsz: int) -> dict:
    """The backbone's own data config (mean, std, interpolation) at the config's input size;
    images are resized to imgsz² whole ('squash'), never centre-cropped: a crop classifier
    must see the whole object."""
    return resolve_data_config({"input_size": (3, imgsz, imgsz), "crop_pct": 1.0,
                                "crop_mode": "squash"}, model=model)


def build_transform(config: dict, train: bool, augment: dict):
    """timm.data.create_transform for this backbone; `augment` from configs/augment.yaml."""
    common = dict(input_size=config["input_size"], interpolation=config["interpolation"],
                  mean=config["mean"], std=config["std"])
    if train:
        return create_transform(is_training=True, **common, **augment)
    return create_transform(is_training=False, crop_pct=1.0, crop_mode="squash", **common)
