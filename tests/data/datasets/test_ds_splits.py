"""Grouped, seeded, iteratively stratified splits (no frame or group in two splits)."""
from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from src.data.datasets.splits import SplitItem, group_key, split_items

RATIOS = (0.7, 0.2, 0.1)


def _items(specs) -> list[SplitItem]:
    """specs: [(group, {label: count})] -> items keyed by position."""
    return [SplitItem((0, i), (0, 0, g), Counter(labels)) for i, (g, labels) in enumerate(specs)]


item_specs = st.lists(
    st.tuples(st.integers(0, 30),
              st.dictionaries(st.sampled_from("abcde"), st.integers(1, 4), max_size=3)),
    min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(item_specs, st.integers(0, 10_000))
def test_every_item_in_exactly_one_split_and_groups_never_straddle(specs, seed):
    items = _items(specs)
    splits = split_items(items, RATIOS, seed)
    placed = [key for keys in splits.values() for key in keys]
    assert sorted(placed) == sorted(i.key for i in items)
    split_of = {key: name for name, keys in splits.items() for key in keys}
    for item in items:
        for other in items:
            if item.group == other.group:
                assert split_of[item.key] == split_of[other.key]


@settings(max_examples=30, deadline=None)
@given(item_specs, st.integers(0, 10_000))
def test_same_inputs_and_seed_give_the_same_split(specs, seed):
    items = _items(specs)
    assert split_items(items, RATIOS, seed) == split_items(list(reversed(items)), RATIOS, seed)


def test_a_zero_ratio_split_stays_empty():
    items = _items([(g, {"a": 1}) for g in range(50)])
    splits = split_items(items, (0.8, 0.2, 0.0), 1)
    assert splits["test"] == [] and len(splits["train"]) == 40


def test_classes_are_spread_in_proportion_and_the_rare_one_reaches_every_split():
    # 300 frames in blocks of 5; 'common' everywhere, 'rare' in 10 blocks only.
    specs = [(i // 5, {"common": 1, **({"rare": 1} if (i // 5) % 6 == 0 else {})})
             for i in range(300)]
    items = _items(specs)
    splits = split_items(items, RATIOS, 7)
    labels = {i.key: i.labels for i in items}
    for label, total in (("common", 300), ("rare", 50)):
        for name, ratio in zip(("train", "val", "test"), RATIOS):
            count = sum(labels[k][label] for k in splits[name])
            assert count > 0
            assert abs(count - ratio * total) <= max(5, 0.05 * total), (label, name, count)


def test_group_keys():
    assert group_key("block", 0, 3, 25, 99, 10) == group_key("block", 0, 3, 29, 98, 10)
    assert group_key("block", 0, 3, 29, 98, 10) != group_key("block", 0, 3, 30, 97, 10)
    assert group_key("source", 1, 3, 0, 5, 10) == group_key("source", 1, 3, 400, 6, 10)
    assert group_key("source", 0, 3, 0, 5, 10) != group_key("source", 1, 3, 0, 5, 10)
    assert group_key("none", 0, 3, 0, 5, 10) != group_key("none", 0, 3, 0, 6, 10)
