"""Training samplers against class imbalance.

`balanced_sampler`: every class equally likely per draw (single-label classifiers).
`RepeatFactorSampler`: images holding rare classes repeated within each epoch (detection,
where an image holds several classes and cannot be given one weight).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler, WeightedRandomSampler


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


# -- repeat-factor sampling (detection datasets) -------------------------------------------

def repeat_factors(image_classes: Sequence[Iterable[int]], threshold: float) -> np.ndarray:
    """LVIS repeat factor of every image (Gupta et al. 2019; detectron2's
    `RepeatFactorTrainingSampler.repeat_factors_from_category_frequency`).

    f(c) is the fraction of images holding at least one object of class c, a class's factor
    is r(c) = max(1, sqrt(threshold / f(c))), and an image's factor is the largest over the
    classes it holds (1 for an image without objects). Classes in more than `threshold` of
    the images are never repeated.
    """
    if threshold <= 0:
        raise ValueError(f"the repeat-factor threshold must be > 0, got {threshold}")
    per_image = [set(int(c) for c in classes) for classes in image_classes]
    if not per_image:
        return np.ones(0)
    images_with = Counter(c for classes in per_image for c in classes)
    class_factor = {c: max(1.0, math.sqrt(threshold / (n / len(per_image))))
                    for c, n in images_with.items()}
    return np.array([max((class_factor[c] for c in classes), default=1.0)
                     for classes in per_image])


class RepeatFactorSampler(Sampler[int]):
    """Image indices of one epoch, image i appearing about `factors[i]` times, shuffled.

    Each pass (one epoch) rounds every factor stochastically afresh — floor(r), plus one
    with probability r - floor(r) — from a generator seeded by (seed, epoch), so runs are
    reproducible and every epoch sees a different draw. An epoch always holds
    `round(sum(factors))` indices (the expected count; a draw that came out longer is cut,
    a shorter one topped up from itself at random): ultralytics' InfiniteDataLoader counts
    an epoch as `len(loader)` batches of one endless stream, so a pass of varying length
    would shift where its epochs begin.
    """

    def __init__(self, factors: Sequence[float], seed: int = 0) -> None:
        self.factors = np.asarray(factors, dtype=float)
        if self.factors.ndim != 1 or not len(self.factors) or (self.factors < 1).any():
            raise ValueError("repeat factors must be a non-empty list of numbers >= 1")
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = int(round(self.factors.sum()))

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw epoch `epoch`'s indices (on resume, or under DDP)."""
        self.epoch = int(epoch)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The shuffled indices of epoch `epoch` (a pure function of seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        whole = np.floor(self.factors)
        counts = (whole + (rng.random(len(self.factors)) < self.factors - whole)).astype(int)
        indices = rng.permutation(np.repeat(np.arange(len(self.factors)), counts))
        missing = self.num_samples - len(indices)
        if missing > 0:
            indices = np.concatenate([indices, rng.choice(indices, missing)])
        return indices[:self.num_samples]

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices(self.epoch)
        self.epoch += 1
        return iter(indices.tolist())
