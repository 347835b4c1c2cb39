"""Early-stopping rules of the learning core on scripted validation curves."""
from __future__ import annotations

import math

import pytest

from src.training.learning.early_stop import (CONTINUE, GIVE_UP, MAX_EPOCHS, STOP_GOOD,
                                              EarlyStopper, StopRules)


def run(rules: StopRules, curve: list[float], times: list[float] | None = None):
    """Feed a curve; return (decision, epochs used, stopper)."""
    stopper = EarlyStopper(rules)
    for epoch, metric in enumerate(curve):
        elapsed = times[epoch] if times else None
        decision = stopper.update(epoch, metric, elapsed)
        if decision != CONTINUE:
            return decision, epoch + 1, stopper
    return CONTINUE, len(curve), stopper


def test_stalled_above_good_enough_stops_after_patience():
    rules = StopRules(patience=3, good_enough=0.5, max_epochs=50)
    decision, epochs, stopper = run(rules, [0.2, 0.4, 0.7, 0.6, 0.65, 0.69, 0.9])
    assert decision == STOP_GOOD
    assert epochs == 6                       # best at epoch 2, then 3 epochs without improvement
    assert (stopper.best, stopper.best_epoch) == (0.7, 2)


def test_stalled_below_good_enough_keeps_going():
    rules = StopRules(patience=2, good_enough=0.8, max_epochs=50)
    decision, epochs, stopper = run(rules, [0.3, 0.4, 0.4, 0.4, 0.4, 0.35])
    assert decision == CONTINUE and epochs == 6
    assert stopper.best == 0.4 and stopper.best_epoch == 1   # ties do not improve


def test_improvement_resets_patience():
    rules = StopRules(patience=2, good_enough=0.1, max_epochs=50)
    decision, epochs, _ = run(rules, [0.5, 0.4, 0.6, 0.55, 0.7, 0.6, 0.6])
    assert decision == STOP_GOOD and epochs == 7


def test_half_budget_floor_gives_up():
    rules = StopRules.half_budget_floor(max_epochs=10, patience=3, good_enough=0.6, floor=0.2)
    assert rules.floor_after_epochs == 5
    decision, epochs, _ = run(rules, [0.0, 0.05, 0.1, 0.15, 0.19, 0.5])
    assert decision == GIVE_UP and epochs == 5


def test_floor_not_applied_once_above_it():
    rules = StopRules.half_budget_floor(max_epochs=10, patience=30, good_enough=0.9, floor=0.2)
    decision, epochs, _ = run(rules, [0.1, 0.3, 0.25, 0.25, 0.25, 0.25, 0.25])
    assert decision == CONTINUE and epochs == 7


def test_floor_after_half_the_wall_time_budget():
    rules = StopRules.half_budget_floor(max_epochs=100, patience=5, good_enough=0.6, floor=0.2,
                                        budget_s=20.0)
    decision, epochs, _ = run(rules, [0.1, 0.1, 0.1, 0.1], times=[3.0, 6.0, 9.5, 10.5])
    assert decision == GIVE_UP and epochs == 4


def test_lit_lora_zero_after_ten():
    rules = StopRules.lit_lora()
    decision, epochs, _ = run(rules, [0.0] * 20)
    assert decision == GIVE_UP and epochs == 10


def test_lit_lora_below_floor_after_fifty():
    rules = StopRules.lit_lora()
    curve = [0.01 + 0.003 * i for i in range(60)]      # creeps up, stays below 0.2 at 50
    decision, epochs, _ = run(rules, curve)
    assert decision == GIVE_UP and epochs == 50


def test_lit_lora_patience_ten_above_point_six():
    rules = StopRules.lit_lora()
    curve = [0.3, 0.5, 0.65] + [0.64] * 10 + [0.9]
    decision, epochs, stopper = run(rules, curve)
    assert decision == STOP_GOOD and epochs == 13 and stopper.best == 0.65


def test_max_epochs():
    decision, epochs, _ = run(StopRules(patience=5, good_enough=0.99, max_epochs=4),
                              [0.1, 0.2, 0.3, 0.4, 0.5])
    assert decision == MAX_EPOCHS and epochs == 4


def test_nan_never_becomes_best():
    stopper = EarlyStopper(StopRules(patience=2, good_enough=0.0, max_epochs=10))
    assert stopper.update(0, 0.3) == CONTINUE
    stopper.update(1, math.nan)
    assert stopper.best == 0.3 and stopper.best_epoch == 0
    assert stopper.update(2, math.nan) == STOP_GOOD


def test_bad_rules_rejected():
    with pytest.raises(ValueError):
        StopRules(patience=0)
