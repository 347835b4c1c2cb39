"""One update of a detector's LoRA adapter on corrected frames (runs in BackgroundUpdate).

The base (an ultralytics DetectionModel, never modified) is copied, the session's previous
adapter is loaded into the copy (or fresh adapters injected: B = 0, so it starts equal to the
base), and only the adapters and (with train_head) the head train, with AdamW, on light
augmentations of the corrected frames. Each epoch draws a new random train/val split;
validation is the proposal score of `edits.py` (1 - edits / shapes, what the user would have
to change) at the proposal confidence. Early stopping follows `LearnSettings.stop_rules()`.

The base is scored on the same validation frames each epoch (its scores are cached per
sample: the base never changes), so the update ends by comparing its best epoch with the
base on that epoch's split: an adapter that does worse is reported as not to be used.
Frames drawn for validation in one epoch may have been trained on in an earlier one, so the
comparison favours the adapter somewhat; with a handful of frames there is no fair held-out
set to spare.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

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


class DetectorUpdate:
    """The job of one update; call it with an UpdateContext (BackgroundUpdate does)."""

    def __init__(self, base: nn.Module, samples: Callable[[], list[DetectorSample]],
                 settings: LearnSettings, imgsz: int, adapter_dir=None,
                 base_scores: dict | None = None) -> None:
        self.base, self.load_samples, self.settings = base, samples, settings
        self.imgsz, self.adapter_dir = imgsz, adapter_dir
        self.base_scores = base_scores if base_scores is not None else {}
        self.device = torch.device(settings.device)

    def __call__(self, ctx: UpdateContext) -> DetectorUpdateResult:
        samples = self.load_samples()
        if len(samples) < self.settings.min_samples:
            return DetectorUpdateResult(None, len(samples), 0,
                                        f"needs {self.settings.min_samples} corrected frames")
        torch.manual_seed(self.settings.seed + len(samples))
        rng = np.random.default_rng(self.settings.seed + len(samples))
        adapted = adapted_copy(self.base, self.settings, self.adapter_dir)
        model = adapted.model.to(self.device)
        model.args = _LOSS_GAINS
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.settings.lr, weight_decay=0.0)
        splits, base_by_epoch = {}, {}

        def train_epoch(epoch: int) -> float:
            splits[epoch] = _split(len(samples), self.settings.val_fraction, rng)
            return self._train(model, optimizer, params, [samples[i] for i in splits[epoch][0]],
                               rng, ctx)

        def validate(epoch: int) -> float:
            val = [samples[i] for i in splits[epoch][1]]
            base_by_epoch[epoch] = float(np.mean([self._base_score(s) for s in val]))
            return float(np.mean(score_samples(model, val, self.imgsz, self.settings)))

        def snapshot() -> dict:
            return {k: v.detach().clone() for k, v in model.state_dict().items()
                    if "lora_" in k or k.startswith(adapted.trainable_prefixes)}

        out = run_epochs(ctx, self.settings.stop_rules(), train_epoch=train_epoch,
                         validate=validate, snapshot=snapshot)
        if out.best_state is None:
            return DetectorUpdateResult(None, len(samples), out.epochs, out.reason)
        model.load_state_dict(out.best_state, strict=False)
        model.cpu().eval()
        model.args = None
        return DetectorUpdateResult(adapted, len(samples), out.epochs, out.reason,
                                    out.best_metric, base_by_epoch[out.best_epoch], out.history)

    def _train(self, model, optimizer, params, train: list[DetectorSample], rng, ctx) -> float:
        model.train()
        lora.frozen_modules_eval(model)
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), self.settings.batch):
            if ctx.cancelled:
                break
            items = [letterbox(train[i], self.imgsz, rng) for i in order[start:start + self.settings.batch]]
            batch = {k: v.to(self.device) for k, v in to_batch(items).items()}
            loss, _items = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            losses.append(float(loss.sum().detach()) / len(items))
        model.eval()
        return float(np.mean(losses)) if losses else math.nan

    def _base_score(self, sample: DetectorSample) -> float:
        key = (sample.id, self.imgsz, self.settings.conf, sample.boxes.tobytes(),
               sample.classes.tobytes())
        if key not in self.base_scores:
            self.base.to(self.device)
            self.base_scores[key] = score_samples(self.base, [sample], self.imgsz,
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


@torch.no_grad()
def detect(model: nn.Module, items: list[Letterboxed], settings: LearnSettings,
           batch: int = 8) -> list[np.ndarray]:
    """(n, 6) x1 y1 x2 y2 conf cls per letterboxed image, after NMS."""
    from ultralytics.utils.nms import non_max_suppression

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(items), batch):
        img = to_batch(items[start:start + batch])["img"].to(device)
        raw = model(img)
        raw = raw[0] if isinstance(raw, (tuple, list)) else raw
        kept = non_max_suppression(raw, settings.conf, settings.iou, nc=model.model[-1].nc)
        out += [k.cpu().numpy() for k in kept]
    model.train(was_training)
    return out


def _split(n: int, val_fraction: float, rng: np.random.Generator):
    order = rng.permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
