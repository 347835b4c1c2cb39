"""LIT-LoRA: a LoRA adapter on SAM 2's mask decoder learned from the user's corrections
while tracking ("Learning In Time").

A corrected frame (the user added points to a tracked mask) becomes a sample: the
memory-conditioned image embedding the decoder saw on that frame, its high-res features,
the points and the accepted mask. An update trains LoRA (rank 8, alpha 16, lr 1e-4) on the
decoder's linear layers of a *copy* of the base decoder — the base tensors are never
touched — for up to 100 epochs, the 80/20 split re-drawn each epoch, loss 20·focal +
1·dice (+ the IoU-head and object-score terms SAM 2 trains with, so that the adapted
decoder's own confidence ranks its masks). The metric is the validation IoU of the mask
the decoder gives *without* the points, which is what tracking asks of it on the next
frames. Early stopping: `StopRules.lit_lora()` of the shared learning core. The update runs
in the shared `BackgroundUpdate`; until it finishes, tracking keeps the previous decoder.

Speed (`LitLoraSettings.fast`, the default): `_FastTrainer` prepares each sample's
prompt- and adapter-independent decoder inputs once per update and trains through
`fast_decoder`, accumulating each batch's gradient one sample at a time; the same loss and
gradients as the reference `_Trainer` up to float rounding (tests/training/sam/
test_sam_fast_path.py). The training copy's modules wait at the engine's ClickGate, so a
click preempts the update between modules.

The generic parts (samples on disk, background update, stop rules, adapter files) are
`src/training/learning/`; this module is only what is SAM-specific.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from src.training import lora
from src.training.learning.adapters import AdapterMeta, AdapterStore
from src.training.learning.early_stop import StopRules
from src.training.learning.samples import SampleStore
from src.training.learning.updater import (BackgroundUpdate, EpochsOutcome, UpdateContext,
                                           UpdateProgress, UpdateResult, run_epochs)
from src.training.sam import fast_decoder
from src.training.sam.engine import SamEngine
from src.training.sam.prompts import Prompt
from src.training.sam.tracker import MaskTracker, TrackedMask


@dataclass(frozen=True)
class LitLoraSettings:
    rank: int = field(default=8, metadata={"help": "LoRA rank"})
    alpha: float = field(default=16, metadata={"help": "LoRA alpha (scale alpha/rank)"})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate"})
    train_share: float = field(default=0.8, metadata={"help": "train split, re-drawn per epoch"})
    focal_weight: float = field(default=20.0, metadata={"help": "weight of the focal loss"})
    dice_weight: float = field(default=1.0, metadata={"help": "weight of the dice loss"})
    batch: int = field(default=4, metadata={"help": "samples per optimizer step"})
    budget_s: float | None = field(default=60.0, metadata={
        "help": "wall-time budget of one update (None: no limit)"})
    fast: bool = field(default=True, metadata={
        "help": "prepare each sample's prompt-independent decoder inputs once per update and "
                "train through fast_decoder (False: ultralytics' decoder forward, the "
                "reference path)"})
    rules: StopRules = field(default_factory=StopRules.lit_lora)


def decoder_targets(decoder: torch.nn.Module) -> list[str]:
    """Every linear layer of the mask decoder (attention projections, MLPs, heads)."""
    return [name for name, m in decoder.named_modules()
            if isinstance(m, torch.nn.Linear) and "lora_" not in name]


def adapted_copy(base: torch.nn.Module, settings: LitLoraSettings,
                 state: dict | None = None) -> torch.nn.Module:
    """A deep copy of the base decoder with LoRA injected (and `state` loaded), base frozen."""
    decoder = copy.deepcopy(base)
    lora.inject_lora(decoder, settings, decoder_targets(base))
    lora.freeze_base(decoder)
    if state:
        set_peft_model_state_dict(decoder, state)
    return decoder.eval()


# -- samples ----------------------------------------------------------------------------

def correction_arrays(engine: SamEngine, tracker: MaskTracker, prompt: Prompt,
                      tracked: TrackedMask, emb_letterbox) -> dict[str, np.ndarray]:
    """What the decoder saw on the corrected frame and what the user accepted."""
    inputs = tracker.last_inputs
    points, labels = engine.prompt_tensors(prompt, emb_letterbox)
    low = inputs.image_embed.shape[-1] * 4
    target = engine.to_input(tracked.mask, emb_letterbox, low) > 0.5
    return {"embed": inputs.image_embed.half().numpy(),
            "high_res_0": inputs.high_res[0].half().numpy(),
            "high_res_1": inputs.high_res[1].half().numpy(),
            "points": points.numpy(), "labels": labels.numpy(),
            "target": target.numpy()}


@dataclass
class _Batch:
    embed: torch.Tensor
    high_res: list[torch.Tensor]
    points: torch.Tensor
    labels: torch.Tensor
    target: torch.Tensor

    @classmethod
    def stack(cls, arrays: list[dict]) -> "_Batch":
        width = max(a["points"].shape[1] for a in arrays)
        pts = np.zeros((len(arrays), width, 2), np.float32)
        lab = -np.ones((len(arrays), width), np.int32)          # -1: SAM's padding point
        for i, a in enumerate(arrays):
            n = a["points"].shape[1]
            pts[i, :n], lab[i, :n] = a["points"][0], a["labels"][0]
        def cat(key: str) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([a[key] for a in arrays])).float()
        return cls(cat("embed"), [cat("high_res_0"), cat("high_res_1")],
                   torch.from_numpy(pts), torch.from_numpy(lab), cat("target"))


# -- loss and metric --------------------------------------------------------------------

def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """Per-mask sigmoid focal loss (mean over pixels): logits/target BxMxHxW → BxM."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask dice loss: BxMxHxW → BxM."""
    prob = logits.sigmoid().flatten(2)
    t = target.flatten(2)
    return 1 - (2 * (prob * t).sum(-1) + 1) / (prob.sum(-1) + t.sum(-1) + 1)


def mask_ious(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    pred = logits > threshold
    t = target > 0.5
    inter = (pred & t).flatten(2).sum(-1).float()
    union = (pred | t).flatten(2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


class _Trainer:
    """One update's epoch loop over the samples (the shared `run_epochs` drives it)."""

    def __init__(self, engine: SamEngine, decoder: torch.nn.Module, arrays: list[dict],
                 settings: LitLoraSettings, seed: int = 0) -> None:
        self.engine, self.decoder, self.arrays, self.s = engine, decoder, arrays, settings
        self.rng = np.random.default_rng(seed)
        params = [p for p in decoder.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=settings.lr)
        self.val_idx: list[int] = list(range(len(arrays)))

    def train_epoch(self, epoch: int) -> float:
        order = self.rng.permutation(len(self.arrays)).tolist()
        n_train = max(1, int(round(self.s.train_share * len(order))))
        train = order[:n_train]
        self.val_idx = order[n_train:] or train        # one sample: validate on it
        self.decoder.train()
        total = 0.0
        for start in range(0, len(train), self.s.batch):
            batch = self._batch(train[start:start + self.s.batch])
            loss = self._loss(batch, prompted=False) + self._loss(batch, prompted=True)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
        self.decoder.eval()
        return total

    def validate(self, epoch: int) -> float:
        batch = self._batch(self.val_idx)
        with torch.no_grad():
            logits, ious, _ = self._forward(batch, prompted=False)
            best = ious.argmax(-1)
            chosen = logits[torch.arange(len(best)), best][:, None]
            return float(mask_ious(chosen, batch.target, self.engine.mask_threshold).mean())

    def snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.decoder).items()}

    def _batch(self, indices: list[int]):
        return _Batch.stack([self.arrays[i] for i in indices])

    def _forward(self, batch: _Batch, *, prompted: bool):
        points = batch.points if prompted else None
        labels = batch.labels if prompted else None
        return self.engine.decode_logits(batch.embed, batch.high_res, points, labels,
                                         multimask=True, decoder=self.decoder)

    def _loss(self, batch: _Batch, *, prompted: bool) -> torch.Tensor:
        logits, ious, obj = self._forward(batch, prompted=prompted)
        target = batch.target.expand_as(logits)
        per_mask = (self.s.focal_weight * focal_loss(logits, target)
                    + self.s.dice_weight * dice_loss(logits, target))
        best = per_mask.argmin(-1)                     # SAM: only the best candidate learns
        rows = torch.arange(len(best))
        loss = per_mask[rows, best].mean()
        true_iou = mask_ious(logits.detach(), target).detach()
        loss = loss + F.mse_loss(ious, true_iou)
        if obj is not None:
            loss = loss + F.binary_cross_entropy_with_logits(obj, torch.ones_like(obj))
        return loss


@dataclass
class _PreparedBatch:
    state: fast_decoder.FrameState
    points: torch.Tensor
    labels: torch.Tensor
    target: torch.Tensor


class _FastTrainer(_Trainer):
    """The same epochs, loss and batches as `_Trainer`, with every sample's prompt- and
    adapter-independent decoder inputs prepared once per update (`fast_decoder.prepare`:
    token layout, high-res blocks, layer 0's base projections of the image tokens, whose
    LoRA deltas are recomputed per step) and the forward through `fast_decoder`."""

    def __init__(self, engine: SamEngine, decoder: torch.nn.Module, arrays: list[dict],
                 settings: LitLoraSettings, seed: int = 0) -> None:
        super().__init__(engine, decoder, arrays, settings, seed)
        every = _Batch.stack(arrays)
        self.points, self.labels = every.points, every.labels
        self.target = fast_decoder.to_blocks(every.target)    # the logits' pixel order
        self.counts = [a["points"].shape[1] for a in arrays]
        with torch.no_grad():
            _, dense = engine.prompt_encoder(points=None, boxes=None, masks=None)
            pe = engine.dense_pe().clone()
            self.state = fast_decoder.prepare(decoder, every.embed, pe, dense.clone(),
                                              every.high_res, first_layer="base")
        # the single-mask output is not computed (the loss takes the multimask candidates):
        # its hypernetwork's adapter gets no gradient, and AdamW would skip it. Zero
        # gradients kept in place make every step the reference's (weight decay included).
        for p in self.opt.param_groups[0]["params"]:
            p.grad = torch.zeros_like(p)

    def train_epoch(self, epoch: int) -> float:
        """`_Trainer.train_epoch`'s steps, each batch's gradient accumulated one sample at
        a time: the loss is a mean over the batch, so the gradient is the same, and
        1-sample passes keep the 4096-token maps in cache (~1.5x faster at 2 threads)."""
        order = self.rng.permutation(len(self.arrays)).tolist()
        n_train = max(1, int(round(self.s.train_share * len(order))))
        train = order[:n_train]
        self.val_idx = order[n_train:] or train
        self.decoder.train()
        total = 0.0
        for start in range(0, len(train), self.s.batch):
            batch = train[start:start + self.s.batch]
            width = max(self.counts[i] for i in batch)   # the batch's padding, as _Batch
            self.opt.zero_grad(set_to_none=False)
            for i in batch:
                one = self._batch([i], width)
                loss = (self._loss(one, prompted=False) + self._loss(one, prompted=True))
                (loss / len(batch)).backward()
                total += float(loss.detach()) / len(batch)
            self.opt.step()
        self.decoder.eval()
        return total

    def _batch(self, indices: list[int], width: int | None = None) -> _PreparedBatch:
        index = torch.tensor(indices)
        if width is None:                                # as _Batch.stack pads a batch
            width = max(self.counts[i] for i in indices)
        return _PreparedBatch(self.state.select(index), self.points[index, :width],
                              self.labels[index, :width], self.target[index])

    def _forward(self, batch: _PreparedBatch, *, prompted: bool):
        n = batch.target.shape[0]
        if prompted:
            points, labels = batch.points, batch.labels
        else:                      # one padding point, as decode_logits / SAM 2 tracking
            points, labels = torch.zeros(n, 1, 2), -torch.ones(n, 1, dtype=torch.int32)
        sparse, _ = self.engine.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        return fast_decoder.fast_predict(self.decoder, batch.state, sparse,
                                         multimask_only=True, blocks=True,
                                         on_backward=self.engine.gate.wait)


def train_adapter(engine: SamEngine, base: torch.nn.Module, arrays: list[dict],
                  settings: LitLoraSettings, ctx: UpdateContext,
                  start_state: dict | None = None) -> tuple[dict | None, EpochsOutcome]:
    """Train from `start_state` (the previous adapter) on `arrays`; (best state, outcome)."""
    decoder = adapted_copy(base, settings, start_state)
    for module in decoder.modules():          # a click preempts the update between modules
        if not any(True for _ in module.children()):
            module.register_forward_pre_hook(engine.gate.wait)
    trainer = (_FastTrainer if settings.fast else _Trainer)(engine, decoder, arrays, settings)
    outcome = run_epochs(ctx, settings.rules, train_epoch=trainer.train_epoch,
                         validate=trainer.validate, snapshot=trainer.snapshot)
    return outcome.best_state, outcome


# -- the session object the GUI and CLI use ------------------------------------------------

@dataclass
class UpdateSummary:
    """The state an update hands back (BackgroundUpdate's `state`)."""
    adapter: dict | None
    outcome: EpochsOutcome
    samples: int


class LitLora:
    """Samples, adapter and background update of one project/source/object.

    Folder: <project>/learning/sam/<source id>/object<id>/ (samples/ and adapter/)."""

    def __init__(self, engine: SamEngine, folder: str | Path, *, base_ref: str,
                 settings: LitLoraSettings | None = None,
                 on_progress: Callable[[UpdateProgress], None] | None = None,
                 on_finished: Callable[[UpdateResult], None] | None = None) -> None:
        self.engine, self.folder = engine, Path(folder)
        self.settings = settings or LitLoraSettings()
        self.base = engine.base_decoder
        self.base_ref = base_ref
        self.samples = SampleStore(self.folder / "samples")
        self.adapters = AdapterStore(self.folder)
        self.decoder: torch.nn.Module | None = None       # the adapted decoder in use
        self.last_summary: UpdateSummary | None = None
        self._lock = threading.Lock()
        self._on_finished = on_finished
        self.update = BackgroundUpdate(self._job, budget_s=self.settings.budget_s,
                                       on_progress=on_progress, on_finished=self._finished,
                                       name="lit-lora-update")
        self.load()

    @staticmethod
    def folder_for(project_root: str | Path, source_id: int, object_id: int) -> Path:
        return Path(project_root) / "learning" / "sam" / str(source_id) / f"object{object_id}"

    # samples
    def add_correction(self, frame_index: int, tracker: MaskTracker, prompt: Prompt,
                       tracked: TrackedMask) -> None:
        """TrackSession's on_correction: store the corrected frame as a sample."""
        emb_box = self.engine.letterbox(*tracked.mask.shape)
        arrays = correction_arrays(self.engine, tracker, prompt, tracked, emb_box)
        self.samples.add(f"frame-{frame_index}", arrays=arrays,
                         meta={"frame_index": frame_index, "prompt": prompt.to_dict()})

    # update
    def request_update(self) -> str:
        """'started' or 'queued' (nothing to learn from: 'no samples')."""
        if len(self.samples) == 0:
            return "no samples"
        return self.update.request()

    def _job(self, ctx: UpdateContext) -> UpdateSummary:
        arrays = [self.samples.get(i).arrays for i in self.samples.ids()]
        start = self._current_state()
        state, outcome = train_adapter(self.engine, self.base, arrays, self.settings, ctx, start)
        return UpdateSummary(state, outcome, len(arrays))

    def _finished(self, result: UpdateResult) -> None:
        summary = result.state
        if summary is not None and summary.adapter is not None:
            decoder = adapted_copy(self.base, self.settings, summary.adapter)
            meta = AdapterMeta.now(self.base_ref, summary.outcome.best_metric, "val_iou",
                                   samples=summary.samples, reason=summary.outcome.reason,
                                   epochs=summary.outcome.epochs)
            self.adapters.save_model(decoder, self.settings, decoder_targets(self.base), meta)
            with self._lock:
                self.decoder = decoder
        self.last_summary = summary
        if self._on_finished is not None:
            self._on_finished(result)

    def _current_state(self) -> dict | None:
        with self._lock:
            decoder = self.decoder
        if decoder is None:
            return None
        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(decoder).items()}

    # adapter file
    def load(self) -> AdapterMeta | None:
        """Reload the saved adapter (reopening a project); None when there is none."""
        if not self.adapters.exists():
            return None
        decoder = copy.deepcopy(self.base)
        meta = self.adapters.load_into(decoder)
        lora.freeze_base(decoder)
        with self._lock:
            self.decoder = decoder.eval()
        return meta

    def discard(self) -> bool:
        """Forget the adapter (file and decoder in use); tracking goes back to the base."""
        self.update.cancel()
        with self._lock:
            self.decoder = None
        return self.adapters.discard()

    def close(self) -> None:
        self.update.close()
