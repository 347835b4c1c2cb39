"""The timm trainer builds its optimizer, schedule, transforms and seeds with timm's factories."""
from __future__ import annotations

import json

import pytest
import timm
import torch
import yaml

from src.errors import ConfigError
from src.training.augment_settings import training_augment
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.timm_trainer import (build_optimizer, build_scheduler, build_transform,
                                       data_config, train_timm)


def test_each_backbone_gets_its_own_normalisation_at_the_config_size():
    resnet = data_config(timm.create_model("resnet18", num_classes=2), 96)
    vit = data_config(timm.create_model("test_vit", num_classes=2), 96)
    assert resnet["mean"] == (0.485, 0.456, 0.406) and vit["mean"] == (0.5, 0.5, 0.5)
    assert resnet["input_size"] == vit["input_size"] == (3, 96, 96)
    train = build_transform(vit, True, training_augment("timm"))
    crop = train.transforms[0]
    assert type(crop).__name__ == "RandomResizedCropAndInterpolation"
    assert crop.scale == tuple(training_augment("timm")["scale"])   # from configs/augment.yaml
    assert torch.allclose(train.transforms[-1].mean, torch.tensor([0.5] * 3))


def test_optimizer_and_warm_up_schedule_come_from_timm(make_cfg):
    cfg = make_cfg("crop_classifier", "model=test_resnet", "lr=0.01", "warmup_epochs=1",
                   "epochs=4", "optimizer=sgd")
    model = timm.create_model("test_resnet", num_classes=2)
    optimizer = build_optimizer(cfg, model)
    # timm's param groups: no weight decay on biases and norm weights
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == [0.0, cfg.weight_decay]
    assert type(optimizer).__name__ == "SGD" and optimizer.param_groups[0]["nesterov"]
    scheduler = build_scheduler(cfg, optimizer, updates_per_epoch=10)
    lrs = []
    for step in range(1, 41):
        scheduler.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] < lrs[5] < lrs[9]                       # linear warm-up over the first epoch
    assert lrs.index(max(lrs)) in (8, 9, 10) and max(lrs) > 0.008   # peak at the end of it
    assert lrs[-1] < lrs[20] < lrs[10]                    # then cosine decay
    assert lrs[-1] >= 0.01 * 0.01


def test_unknown_timm_augmentation_key_names_the_file(tmp_path):
    bad = tmp_path / "augment.yaml"
    bad.write_text(yaml.safe_dump({"training": {"timm": {"hflp": 0.5}}}))
    with pytest.raises(ConfigError, match="'training.timm.hflp' is not a timm"):
        training_augment("timm", bad)
    bad.write_text(yaml.safe_dump({"training": {"yolo": {"mosaic": 3}}}))
    with pytest.raises(ConfigError, match="'mosaic=3' is an invalid value"):
        training_augment("yolo", bad)


@pytest.mark.slow
def test_trained_model_records_its_backbone_normalisation(make_cfg, binary_dataset, tmp_path):
    cfg = make_cfg("crop_classifier", "model=test_vit", "imgsz=32", "seed=3")
    lrs = []
    bus = EventBus()
    bus.on("on_train_batch_end", lambda _e, p: lrs.append(p["lr"]))
    outcome = train_timm(cfg, binary_dataset, tmp_path / "run", bus, RunControl())
    assert outcome.status == "completed"
    config = json.loads((tmp_path / "run" / "model_config.json").read_text())
    assert config["mean"] == [0.5, 0.5, 0.5] and config["resize"] == "squash"
    assert lrs[0] < lrs[1]                                  # warming up (lr after each step)
    assert lrs[-1] == pytest.approx(cfg.lr * 0.01)         # the schedule ends at lr/100
