"""Balanced batch sampling: every class equally likely in expectation per batch."""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils.data import WeightedRandomSampler


def balanced_sampler(labels: list[int], seed: int = 0,
                     num_samples: int | None = None) -> WeightedRandomSampler:
    """Sample with replacement, weighting each example by 1 / its class count.

    An epoch keeps its usual length (len(labels) draws) unless `num_samples` is given,
    so epoch numbering and ETA stay comparable with unbalanced runs.
    """
    counts = Counter(labels)
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples or len(labels), replacement=True,
                                 generator=generator)
