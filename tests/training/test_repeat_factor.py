"""Repeat-factor sampling for YOLO datasets: factors, per-epoch draws, the loader hook."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from src.errors import ConfigError
from src.training.config import config_from_dict
from src.training.sampling import RepeatFactorSampler, repeat_factors


def test_factors_follow_the_lvis_rule():
    # 11 images: class 0 in 10, class 1 in one, class 2 in four (twice in each), one empty
    images = [[0, 1]] + [[0, 2, 2]] * 4 + [[0]] * 5 + [[]]
    factors = repeat_factors(images, threshold=0.4)
    assert factors[0] == pytest.approx(math.sqrt(0.4 / (1 / 11)))    # 2.10
    assert factors[1:5] == pytest.approx([math.sqrt(0.4 / (4 / 11))] * 4)   # 1.05
    assert list(factors[5:]) == [1.0] * 6        # common class only, and the empty image


def test_image_factor_is_the_largest_of_its_classes():
    images = [[0]] * 8 + [[1]] + [[0, 1]]        # class 1 in 2 of 10 images
    factors = repeat_factors(images, threshold=0.8)
    assert factors[8] == factors[9] == pytest.approx(2.0)
    assert factors[0] == pytest.approx(1.0)      # f(0) = 0.9 > threshold


def test_no_class_rarer_than_the_threshold_means_no_repeats():
    assert list(repeat_factors([[0], [1], [0, 1]], threshold=0.3)) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        repeat_factors([[0]], threshold=0)


def test_stochastic_rounding_keeps_each_images_mean():
    factors = np.array([1.0, 1.5, 2.25, 3.25])   # sums to 8: 8 indices per epoch
    sampler = RepeatFactorSampler(factors, seed=3)
    counts = np.zeros(len(factors))
    epochs = 3000
    for _ in range(epochs):
        draw = list(sampler)
        assert len(draw) == len(sampler) == 8
        counts += np.bincount(draw, minlength=len(factors))
    assert counts / epochs == pytest.approx(factors, rel=0.05)


def test_epoch_length_is_fixed_while_the_draw_varies():
    factors = np.array([1.0] * 20 + [2.5] * 4)  # sum 30
    sampler = RepeatFactorSampler(factors, seed=0)
    draws = [list(sampler) for _ in range(6)]
    assert all(len(d) == 30 for d in draws)
    assert all(set(d) <= set(range(24)) for d in draws)
    assert len({tuple(d) for d in draws}) == 6   # a fresh draw (and order) every epoch


def test_draws_are_reproducible_per_seed_and_epoch():
    factors = np.linspace(1, 3, 12)
    a, b = RepeatFactorSampler(factors, seed=7), RepeatFactorSampler(factors, seed=7)
    assert [list(a) for _ in range(3)] == [list(b) for _ in range(3)]
    other = RepeatFactorSampler(factors, seed=8)
    assert list(other) != list(RepeatFactorSampler(factors, seed=7))
    resumed = RepeatFactorSampler(factors, seed=7)
    resumed.set_epoch(2)                          # a resume at epoch 2 draws what a run did
    assert list(resumed) == list(a.epoch_indices(2))


def test_rejects_factors_below_one():
    with pytest.raises(ValueError):
        RepeatFactorSampler([1.0, 0.5])


class _Indices(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return i


@pytest.mark.parametrize("workers", [0, 1])
def test_ultralytics_loader_epochs_are_the_samplers_epochs(workers):
    """InfiniteDataLoader serves one endless stream; each of its epochs must be one draw."""
    from ultralytics.data.build import build_dataloader

    from src.training.yolo_trainer import _loader_with_sampler

    base = build_dataloader(_Indices(), batch=4, workers=workers, shuffle=True, rank=-1,
                            device="cpu")
    sampler = RepeatFactorSampler([1.0] * 8 + [2.6, 3.4], seed=1)   # 14 per epoch
    loader = _loader_with_sampler(base, sampler)
    try:
        assert len(loader) == 4 and loader.sampler is sampler
        for epoch in range(3):
            seen = torch.cat(list(loader)).tolist()
            assert seen == sampler.epoch_indices(epoch).tolist()
    finally:
        loader.close()


def _cfg(**imbalance):
    return config_from_dict({"name": "d", "model_type": "yolo", "task": "detect",
                             "model": "yolov8n", "imbalance": imbalance})


def test_config_key_is_off_by_default_and_checked():
    assert _cfg().imbalance.repeat_factor_threshold == 0.0
    assert _cfg(repeat_factor_threshold=0.3).imbalance.repeat_factor_threshold == 0.3
    with pytest.raises(ConfigError, match="repeat_factor_threshold"):
        _cfg(repeat_factor_threshold=-0.1)


@pytest.mark.slow
def test_lora_detection_run_draws_rare_images_more_often(tmp_path):
    """A real (tiny) LoRA run: the train loader is ours and each epoch is the longer draw."""
    from dataclasses import replace

    from src.training.config import ImbalanceSettings
    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.yolo_trainer import train_yolo
    from tests.training.yolo_fixtures import write_yolo_dataset, yolo_config

    data = write_yolo_dataset(tmp_path / "data", n_train=12, n_val=4)
    for i, label in enumerate(sorted((tmp_path / "data" / "labels" / "train").glob("*.txt"))):
        cls, rest = label.read_text().split(" ", 1)
        label.write_text(f"{int(i == 0)} {rest}")      # class 1 ('blue') in 1 of 12 images
    cfg = replace(yolo_config("detect", epochs=1, lora=True),
                  imbalance=ImbalanceSettings(repeat_factor_threshold=0.5))
    bus, batches = EventBus(), []
    bus.on("on_train_epoch_start", lambda name, p: batches.append(p["batches"]))
    outcome = train_yolo(cfg, data, tmp_path / "run", bus, RunControl(),
                         base_dir=tmp_path / "no-base")
    assert outcome.status == "completed" and outcome.params["share"] < 0.5   # LoRA
    # factors: 11 images x1, the rare one x sqrt(0.5 / (1/12)) = 2.45 -> 13 images per epoch
    assert "1 of 12 training images repeated (up to x2.45); 13 images per epoch" in \
        outcome.base_model_source
    assert batches == [4]             # ceil(13 / 4); ultralytics' own loader has 3
