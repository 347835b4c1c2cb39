"""One update of a detector's LoRA adapter on corrected frames (runs in BackgroundUpdate).

The base (an ultralytics DetectionModel, never modified) is copied, the session's previous
adapter is loaded into the copy (or fresh adapters injected: B = 0, so it starts equal to the
base), and only the adapters and (with train_head) the head train, with AdamW, on light
augmentations of the corrected frames. Each epoch draws a new random train/val split;
validation is the proposal score of `edits.py` (1 - edits / shapes, what the user would have
to change) at the proposal confidence. Early stopping follows `LearnSettings.stop_rules()`.

The base is scored on the same validation frames each epoch (its scores are cached per
sample: the base never changes), so the update ends by comparing its best epoch with the
base on that epoch's split: an adapter that does worse is reported as not to be used. An
update that continues an adapter also scores the adapter it started from on that split and
keeps it when no epoch beat it (on the demo, some updates on 50+ frames collapsed within
their one budgeted epoch), so an update never ends worse than it began on its own measure.
Frames drawn for validation in one epoch may have been trained on in an earlier one, so the
comparison favours the adapter somewhat; with a handful of frames there is no fair held-out
set to spare.

What differs between tasks is an `UpdateTask`: the loss settings ultralytics' own loss
(`model.loss`) reads, the training batch, and the validation score. `DETECT` is the
detector's (box IoU); segment_update.py's `SEGMENT` trains a YOLO-seg model on polygons and
scores with mask IoU. Everything else (copy, adapters, AdamW, splits, early stopping, the
comparison with the base and with the starting adapter) is this one class.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from src.training import lora
from src.training.learning.detector_data import DetectorSample, Letterboxed, letterbox, to_batch
from src.training.learning.edits import Shape, count_edits, proposal_score
from src.training.learning.settings import LearnSettings
from src.training.learning.updater import UpdateContext, run_epochs

_LOSS_GAINS = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)   # ultralytics' default gains


@dataclass
class AdaptedModel:
    """A base copy with adapters: what an update trains and what gets saved."""

    model: nn.Module
    targets: list[str]
    trainable_prefixes: tuple[str, ...]


@dataclass
class DetectorUpdateResult:
    """What an update produced. `model` is None when it did not train (too few samples)."""

    adapted: AdaptedModel | None
    samples: int
    epochs: int
    reason: str
    val_metric: float | None = None
    base_metric: float | None = None
    history: list[float] = field(default_factory=list)
    optimizer_state: dict | None = None     # AdamW's moments, for the session's next update

    @property
    def better_than_base(self) -> bool:
        return (self.adapted is not None and self.val_metric is not None
                and self.base_metric is not None and self.val_metric >= self.base_metric)


def adapted_copy(base: nn.Module, settings: LearnSettings, adapter_dir=None) -> AdaptedModel:
    """A copy of `base` with the session's adapter loaded (or new adapters at zero)."""
    model = copy.deepcopy(base).float()
    head = lora.yolo_head_prefixes(model)
    targets = lora.adapter_targets(model, settings.lora(), head)
    if adapter_dir is not None:
        lora.load_adapters(model, adapter_dir)
    else:
        lora.inject_lora(model, settings.lora(), targets)
    trainable = head if settings.train_head else ()
    lora.freeze_base(model, trainable)
    return AdaptedModel(model, targets, trainable)


def merged_model(adapted: AdaptedModel) -> nn.Module:
    """A plain model with the adapters folded in (for ultralytics' predictor or a version)."""
    return lora.merge_lora(copy.deepcopy(adapted.model)).eval()


class UpdateTask(Protocol):
    """What an update does differently for one kind of model (detect, segment)."""

    name: str                  # the model version's task
    metric_name: str           # what `score` measures, for the adapter's metadata

    def loss_args(self) -> SimpleNamespace:
        """The hyperparameters ultralytics' loss of this task reads from `model.args`."""

    def batch(self, items: list[Letterboxed]) -> dict:
        """The batch dict this task's loss expects."""

    def score(self, model: nn.Module, samples: list[DetectorSample], imgsz: int,
              settings: LearnSettings) -> list[float]:
        """The validation score of `model` on each sample (higher is better, in [0, 1])."""


class DetectTask:
    """Boxes: ultralytics' detection loss, the proposal score with box IoU."""

    name, metric_name = "detect", "proposal_score"

    def loss_args(self) -> SimpleNamespace:
        return SimpleNamespace(**vars(_LOSS_GAINS))

    def batch(self, items: list[Letterboxed]) -> dict:
        return to_batch(items)

    def score(self, model, samples, imgsz, settings) -> list[float]:
        return score_samples(model, samples, imgsz, settings)


DETECT = DetectTask()


class DetectorUpdate:
    """The job of one update; call it with an UpdateContext (BackgroundUpdate does).
    `task` says what the model is (DETECT by default; segment_update.SEGMENT)."""

    def __init__(self, base: nn.Module, samples: Callable[[], list[DetectorSample]],
                 settings: LearnSettings, imgsz: int, adapter_dir=None,
                 base_scores: dict | None = None, optimizer_state: dict | None = None, *,
                 task: UpdateTask | None = None) -> None:
        self.task = task or DETECT
        self.base, self.load_samples, self.settings = base, samples, settings
        self.imgsz, self.adapter_dir = imgsz, adapter_dir
        self.optimizer_state = optimizer_state if adapter_dir is not None else None
        self.base_scores = base_scores if base_scores is not None else {}
        self.device = torch.device(settings.device)

    def __call__(self, ctx: UpdateContext) -> DetectorUpdateResult:
        threads = torch.get_num_threads()
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        try:
            return self._update(ctx)
        finally:
            torch.set_num_threads(threads)

    def _update(self, ctx: UpdateContext) -> DetectorUpdateResult:
        samples = self.load_samples()
        if len(samples) < self.settings.min_samples:
            return DetectorUpdateResult(None, len(samples), 0,
                                        f"needs {self.settings.min_samples} corrected frames")
        torch.manual_seed(self.settings.seed + len(samples))
        rng = np.random.default_rng(self.settings.seed + len(samples))
        adapted = adapted_copy(self.base, self.settings, self.adapter_dir)
        model = adapted.model.to(self.device)
        model.args = self.task.loss_args()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = self._optimizer(params)
        splits, base_by_epoch, val_s = {}, {}, [0.0]
        # Scoring after the loop: a validation per epoch, plus one of the adapter the update
        # started from. Training keeps their time out of the budget (they used to overrun it).
        scorings = 2 if self.adapter_dir is not None else 1

        def train_epoch(epoch: int) -> float:
            splits[epoch] = _split(len(samples), self.settings.val_fraction, rng,
                                   self.settings.max_val)
            return self._train(model, optimizer, params, [samples[i] for i in splits[epoch][0]],
                               rng, ctx, reserve_s=scorings * val_s[0])

        def validate(epoch: int) -> float:
            began = time.monotonic()
            val = [samples[i] for i in splits[epoch][1]]
            base_by_epoch[epoch] = float(np.mean([self._base_score(s) for s in val]))
            score = float(np.mean(self.task.score(model, val, self.imgsz, self.settings)))
            val_s[0] = max(val_s[0], time.monotonic() - began)
            return score

        def snapshot() -> dict:
            return {k: v.detach().clone() for k, v in model.state_dict().items()
                    if "lora_" in k or k.startswith(adapted.trainable_prefixes)}

        start = snapshot() if self.adapter_dir is not None else None
        out = run_epochs(ctx, self.settings.stop_rules(), train_epoch=train_epoch,
                         validate=validate, snapshot=snapshot)
        if out.best_state is None:
            return DetectorUpdateResult(None, len(samples), out.epochs, out.reason)
        moments = copy.deepcopy(optimizer.state_dict())
        if start is not None:
            val = [samples[i] for i in splits[out.best_epoch][1]]
            model.load_state_dict(start, strict=False)
            kept = float(np.mean(self.task.score(model, val, self.imgsz, self.settings)))
            if kept >= out.best_metric:
                out.best_state, out.best_metric = start, kept
                out.reason += "; no epoch beat the adapter it started from: kept as it was"
                moments = self.optimizer_state
        model.load_state_dict(out.best_state, strict=False)
        model.cpu().eval()
        model.args = None
        return DetectorUpdateResult(adapted, len(samples), out.epochs, out.reason,
                                    out.best_metric, base_by_epoch[out.best_epoch], out.history,
                                    moments)

    def _optimizer(self, params) -> torch.optim.Optimizer:
        """AdamW, with the moments the previous update left when it continues its adapter:
        a fresh Adam moves every weight by about lr at its first steps, which wrecked a
        trained adapter within one epoch (the first update starts from B = 0 and is fine)."""
        optimizer = torch.optim.AdamW(params, lr=self.settings.lr, weight_decay=0.0)
        state = self.optimizer_state
        if state and len(state["param_groups"][0]["params"]) == len(params):
            optimizer.load_state_dict(state)
        return optimizer

    def _train(self, model, optimizer, params, train: list[DetectorSample], rng, ctx,
               reserve_s: float = 0.0) -> float:
        """One epoch; a batch starts only when it, and `reserve_s` of scoring after it, still
        fit in the budget (many frames make long epochs)."""
        model.train()
        lora.frozen_modules_eval(model)
        order = rng.permutation(len(train))
        losses, batch_s = [], 0.0
        for start in range(0, len(order), self.settings.batch):
            if ctx.cancelled or ctx.time_left_s < reserve_s + batch_s:
                break
            began = time.monotonic()
            chosen = order[start:start + self.settings.batch]
            items = [letterbox(train[i], self.imgsz, rng) for i in chosen]
            batch = {k: v.to(self.device) for k, v in self.task.batch(items).items()}
            loss, _items = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            losses.append(float(loss.sum().detach()) / len(items))
            batch_s = time.monotonic() - began
        model.eval()
        return float(np.mean(losses)) if losses else math.nan

    def _base_score(self, sample: DetectorSample) -> float:
        polygons = b"".join(np.asarray(p, np.float32).tobytes() for p in sample.polygons or ())
        key = (self.task.name, sample.id, self.imgsz, self.settings.conf, sample.boxes.tobytes(),
               sample.classes.tobytes(), polygons)
        if key not in self.base_scores:
            self.base.to(self.device)
            self.base_scores[key] = self.task.score(self.base, [sample], self.imgsz,
                                                    self.settings)[0]
        return self.base_scores[key]


def score_samples(model: nn.Module, samples: list[DetectorSample], imgsz: int,
                  settings: LearnSettings) -> list[float]:
    """The proposal score of `model` on each sample (plain letterbox, no augmentation)."""
    items = [letterbox(s, imgsz) for s in samples]
    scores = []
    for item, found in zip(items, detect(model, items, settings)):
        truth = [Shape(tuple(b), int(c)) for b, c in zip(item.boxes, item.classes)]
        proposals = [Shape(tuple(d[:4]), int(d[5])) for d in found]
        scores.append(proposal_score(count_edits(proposals, truth), len(proposals), len(truth)))
    return scores


def forward_batches(model: nn.Module, items: list[Letterboxed], batch: int = 8):
    """(image batch, model output) over `items` in eval mode, without gradients; the model's
    train/eval mode is put back afterwards (detect and segment scoring share this)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, len(items), batch):
                img = to_batch(items[start:start + batch])["img"].to(device)
                yield img, model(img)
    finally:
        model.train(was_training)


def detect(model: nn.Module, items: list[Letterboxed], settings: LearnSettings,
           batch: int = 8) -> list[np.ndarray]:
    """(n, 6) x1 y1 x2 y2 conf cls per letterboxed image, after NMS."""
    from ultralytics.utils.nms import non_max_suppression

    out = []
    for _img, raw in forward_batches(model, items, batch):
        raw = raw[0] if isinstance(raw, (tuple, list)) else raw
        kept = non_max_suppression(raw, settings.conf, settings.iou, nc=model.model[-1].nc)
        out += [k.cpu().numpy() for k in kept]
    return out


def _split(n: int, val_fraction: float, rng: np.random.Generator, max_val: int):
    order = rng.permutation(n)
    n_val = min(n - 1, max_val, max(1, round(n * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
