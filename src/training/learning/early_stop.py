"""Early stopping for adapter updates learned from user corrections.

One `StopRules` expresses both designs that share this core:
- learning from corrections (detector/segmenter): stop when validation has not improved for
  `patience` epochs and is above `good_enough`; give up when it is still below `floor` after
  half the budget (`StopRules.half_budget_floor`).
- LIT-LoRA (SAM 2 mask decoder): patience 10 and > 0.6; give up when < 0.2 after 50 epochs,
  or still 0 after 10 (`floor_after_epochs=50`, `zero_after_epochs=10`).

Epochs are counted from 0 as the trainer counts them; "after N epochs" means once N epochs
have been validated (epoch index N - 1). Higher metric is better.

    stopper = EarlyStopper(StopRules(patience=3, good_enough=0.5, floor=0.1,
                                     floor_after_epochs=10, max_epochs=20))
    for epoch in range(...):
        ...train, validate...
        decision = stopper.update(epoch, val_metric)
        if decision != CONTINUE: break
    stopper.best, stopper.best_epoch
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

CONTINUE = "continue"
STOP_GOOD = "stop_good"     # no improvement for `patience` epochs and best >= good_enough
GIVE_UP = "give_up"         # hopeless: below floor after floor_after_*, or 0 after zero_after
MAX_EPOCHS = "max_epochs"   # the epoch budget is spent
DECISIONS = (CONTINUE, STOP_GOOD, GIVE_UP, MAX_EPOCHS)


@dataclass(frozen=True)
class StopRules:
    """When an update stops. Every threshold is on the validation metric (higher is better)."""

    patience: int = field(default=5, metadata={
        "help": "epochs without improvement after which a good-enough run stops"})
    good_enough: float = field(default=0.5, metadata={
        "help": "best metric at or above which a stalled run stops as 'stop_good'"})
    floor: float = field(default=0.0, metadata={
        "help": "best metric still below this after floor_after_epochs (or floor_after_s) "
                "gives up"})
    floor_after_epochs: int | None = field(default=None, metadata={
        "help": "epochs after which the floor rule applies; None: never by epochs"})
    zero_after_epochs: int | None = field(default=None, metadata={
        "help": "epochs after which a best metric still at 0 gives up; None: no such rule"})
    max_epochs: int = field(default=100, metadata={"help": "hard cap on epochs"})
    floor_after_s: float | None = field(default=None, metadata={
        "help": "seconds after which the floor rule applies (half a wall-time budget); None: "
                "never by time"})
    min_delta: float = field(default=0.0, metadata={
        "help": "an epoch improves on the best only by more than this"})

    def __post_init__(self) -> None:
        if self.patience < 1 or self.max_epochs < 1:
            raise ValueError("patience and max_epochs must be at least 1")

    @classmethod
    def half_budget_floor(cls, *, max_epochs: int, patience: int, good_enough: float,
                          floor: float, budget_s: float | None = None) -> "StopRules":
        """Issue 14's rules: give up below `floor` after half the epoch (and time) budget."""
        return cls(patience=patience, good_enough=good_enough, floor=floor,
                   floor_after_epochs=max(1, max_epochs // 2), max_epochs=max_epochs,
                   floor_after_s=budget_s / 2 if budget_s else None)

    @classmethod
    def lit_lora(cls) -> "StopRules":
        """Issue 15's rules: patience 10 above 0.6; < 0.2 after 50 epochs or 0 after 10."""
        return cls(patience=10, good_enough=0.6, floor=0.2, floor_after_epochs=50,
                   zero_after_epochs=10, max_epochs=100)


class EarlyStopper:
    """Feeds on one validation metric per epoch and says whether to go on."""

    def __init__(self, rules: StopRules) -> None:
        self.rules = rules
        self.best: float = -math.inf
        self.best_epoch: int = -1
        self.epochs_seen = 0
        self.decision = CONTINUE

    def update(self, epoch: int, val_metric: float, elapsed_s: float | None = None) -> str:
        """Record epoch `epoch` (0-based) and return one of DECISIONS.

        A NaN metric never improves the best. `elapsed_s` (time since the update started)
        lets `floor_after_s` apply."""
        self.epochs_seen = epoch + 1
        metric = float(val_metric)
        if not math.isnan(metric) and (self.best_epoch < 0
                                       or metric > self.best + self.rules.min_delta):
            self.best, self.best_epoch = metric, epoch
        self.decision = self._decide(epoch + 1, elapsed_s)
        return self.decision

    @property
    def improved_last(self) -> bool:
        """The epoch just recorded is the new best."""
        return self.best_epoch == self.epochs_seen - 1

    def _decide(self, done: int, elapsed_s: float | None) -> str:
        rules = self.rules
        best = self.best if self.best_epoch >= 0 else -math.inf
        stalled = done - 1 - self.best_epoch >= rules.patience
        if stalled and best >= rules.good_enough:
            return STOP_GOOD
        if rules.zero_after_epochs is not None and done >= rules.zero_after_epochs and best <= 0:
            return GIVE_UP
        if best < rules.floor and self._floor_applies(done, elapsed_s):
            return GIVE_UP
        return MAX_EPOCHS if done >= rules.max_epochs else CONTINUE

    def _floor_applies(self, done: int, elapsed_s: float | None) -> bool:
        by_epochs = self.rules.floor_after_epochs is not None and done >= self.rules.floor_after_epochs
        by_time = (self.rules.floor_after_s is not None and elapsed_s is not None
                   and elapsed_s >= self.rules.floor_after_s)
        return by_epochs or by_time
