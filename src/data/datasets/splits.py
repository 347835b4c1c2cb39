"""Seeded, grouped, stratified train/val/test splits.

Frames are first gathered into groups (a block of consecutive frames, a whole video, or
each frame alone) so near-duplicates never straddle two splits. Groups are then dealt to
splits with the iterative stratification of Sechidis, Tsoumakas & Vlahavas (2011), "On the
stratification of multi-label data", applied to groups instead of single examples and
weighted by instance counts: the rarest label is placed first, each group going to the
split that still wants most of that label.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Hashable

from src.data.datasets.spec import SPLITS


@dataclass
class SplitItem:
    """One frame to place: `key` identifies it, `group` keeps it with its neighbours."""
    key: tuple
    group: tuple
    labels: Counter = field(default_factory=Counter)   # class -> instances in the frame


@dataclass
class _Group:
    key: tuple
    items: list[SplitItem]
    labels: Counter
    size: int


def group_key(group_by: str, project_index: int, source_id: int, rank: int,
              frame_id: int, block_size: int) -> tuple:
    """Group of a frame; `rank` is its position among the source's captured frames."""
    if group_by == "source":
        return (project_index, source_id, 0)
    if group_by == "block":
        return (project_index, source_id, rank // block_size)
    return (project_index, source_id, frame_id)


def split_items(items: list[SplitItem], ratios: tuple[float, float, float],
                seed: int) -> dict[str, list[tuple]]:
    """Split name -> sorted item keys. Same items, ratios and seed give the same lists."""
    groups = _gather(items)
    assignment = stratify_groups(groups, ratios, random.Random(seed))
    out: dict[str, list[tuple]] = {name: [] for name in SPLITS}
    for group, split in zip(groups, assignment):
        out[SPLITS[split]].extend(item.key for item in group.items)
    return {name: sorted(keys) for name, keys in out.items()}


def _gather(items: list[SplitItem]) -> list[_Group]:
    by_key: dict[tuple, list[SplitItem]] = defaultdict(list)
    for item in items:
        by_key[item.group].append(item)
    groups = []
    for key in sorted(by_key):
        members = sorted(by_key[key], key=lambda i: i.key)
        labels: Counter = Counter()
        for item in members:
            labels.update(item.labels)
        groups.append(_Group(key, members, labels, len(members)))
    return groups


def stratify_groups(groups: list[_Group], ratios, rng: random.Random) -> list[int]:
    """Split index for each group (Sechidis et al.'s algorithm over weighted groups)."""
    active = [j for j, r in enumerate(ratios) if r > 0]
    wanted_total = [sum(g.size for g in groups) * r for r in ratios]
    label_totals: Counter = Counter()
    holders: dict[Hashable, set[int]] = defaultdict(set)
    for index, group in enumerate(groups):
        for label, count in group.labels.items():
            if count > 0:
                label_totals[label] += count
                holders[label].add(index)
    wanted = {label: [total * r for r in ratios] for label, total in label_totals.items()}
    assignment = [-1] * len(groups)

    def place(index: int, split: int) -> None:
        assignment[index] = split
        wanted_total[split] -= groups[index].size
        for label, count in groups[index].labels.items():
            if count > 0:
                wanted[label][split] -= count
                holders[label].discard(index)

    while any(holders.values()):
        fewest = min(len(h) for h in holders.values() if h)
        rarest = sorted((lab for lab, h in holders.items() if len(h) == fewest), key=str)
        label = rng.choice(rarest)
        members = sorted(holders[label])
        rng.shuffle(members)
        for index in members:
            place(index, _best_split(active, wanted[label], wanted_total, rng))
    for index in range(len(groups)):
        if assignment[index] < 0:
            place(index, _best_split(active, wanted_total, wanted_total, rng))
    return assignment


def _best_split(active: list[int], wanted_label: list[float], wanted_total: list[float],
                rng: random.Random) -> int:
    top = max(wanted_label[j] for j in active)
    tied = [j for j in active if wanted_label[j] == top]
    if len(tied) > 1:
        top_total = max(wanted_total[j] for j in tied)
        tied = [j for j in tied if wanted_total[j] == top_total]
    return tied[0] if len(tied) == 1 else rng.choice(tied)
