"""Imbalance handling (weighted CE, focal loss, balanced sampler) and classifier metrics."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from src.training.config import ImbalanceSettings
from src.training.losses import FocalLoss, build_loss, class_weights
from src.training.metrics import classification_metrics
from src.training.sampling import balanced_sampler


def test_class_weights_inverse_frequency():
    w = class_weights([90, 10, 0])
    assert w[1] / w[0] == pytest.approx(9.0)
    assert w[2] == 0                                   # absent class: no weight
    assert w[:2].mean() == pytest.approx(1.0)          # present classes average to 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 5))
def test_focal_loss_gamma_zero_is_cross_entropy(seed, k):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, k, generator=gen)
    target = torch.randint(0, k, (8,), generator=gen)
    assert FocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-5)


def test_focal_loss_down_weights_easy_examples():
    easy = torch.tensor([[6.0, 0.0]])
    hard = torch.tensor([[0.2, 0.0]])
    target = torch.tensor([0])
    ratio_focal = FocalLoss(2.0)(easy, target) / FocalLoss(2.0)(hard, target)
    ratio_ce = F.cross_entropy(easy, target) / F.cross_entropy(hard, target)
    assert ratio_focal < ratio_ce / 100


def test_focal_alpha_weights_positive_class():
    logits = torch.zeros(2, 2)
    loss_pos = FocalLoss(0.0, alpha=0.75)(logits[:1], torch.tensor([1]))
    loss_neg = FocalLoss(0.0, alpha=0.75)(logits[:1], torch.tensor([0]))
    assert (loss_pos / loss_neg).item() == pytest.approx(3.0)


def test_build_loss_follows_settings():
    counts = [30, 3]
    assert isinstance(build_loss(ImbalanceSettings(), counts), torch.nn.CrossEntropyLoss)
    weighted = build_loss(ImbalanceSettings(class_weights=True), counts)
    assert weighted.weight[1] / weighted.weight[0] == pytest.approx(10.0)
    focal = build_loss(ImbalanceSettings(focal_loss=True, focal_gamma=1.5, class_weights=True),
                       counts)
    assert isinstance(focal, FocalLoss) and focal.gamma == 1.5 and focal.weight is not None


def test_balanced_sampler_evens_out_a_rare_class():
    labels = [0] * 95 + [1] * 5
    draws = Counter(labels[i] for _ in range(20) for i in balanced_sampler(labels, seed=3))
    share = draws[1] / sum(draws.values())
    assert 0.4 < share < 0.6, draws                   # 5% in the data, ~50% in batches
    assert len(balanced_sampler(labels)) == len(labels)


def test_metrics_per_class_and_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 0, 0, 1, 1, 1, 2, 0]] * 0.9 + 0.1 / 3
    metrics, per_class = classification_metrics(y, probs, ["a", "b", "c"])
    assert per_class["a"]["recall"] == pytest.approx(0.75)
    assert per_class["a"]["precision"] == pytest.approx(0.75)
    assert per_class["b"]["precision"] == pytest.approx(2 / 3)
    assert per_class["c"]["recall"] == pytest.approx(0.5)
    assert metrics["balanced_accuracy"] == pytest.approx((0.75 + 1 + 0.5) / 3)
    assert metrics["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert 0.5 < metrics["roc_auc"] <= 1.0


def test_metrics_with_a_class_missing_from_the_split():
    y = np.array([0, 0, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    metrics, per_class = classification_metrics(y, probs, ["a", "b", "c"])
    assert "roc_auc" not in metrics                    # undefined, not a crash
    assert per_class["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
