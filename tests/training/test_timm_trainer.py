"""timm classifiers: full and LoRA smoke trainings, outputs, frozen base, merged model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from src.errors import ConfigError
from src.training import lora
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.image_folder import ImageClassDataset, load_splits
from src.training.timm_trainer import create_classifier, resolve_timm_base, train_timm

EXPECTED_EVENTS = ["on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
                   "on_train_batch_start", "on_train_batch_end", "on_train_epoch_end",
                   "on_fit_epoch_end", "on_model_save", "on_train_end"]


def _train(cfg, data, run_dir, **kw):
    bus, events = EventBus(), []
    bus.on("*", lambda e, p: events.append((e, p)))
    outcome = train_timm(cfg, data, run_dir, bus, RunControl(), **kw)
    return outcome, events


def _reload_merged(run_dir):
    config = json.loads((run_dir / "model_config.json").read_text())
    model = timm.create_model(config["architecture"], num_classes=config["num_classes"])
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    return model.eval(), config


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "efficientnet_b0"])
def test_full_training_outputs_and_events(model, make_cfg, classify_dataset, tmp_path):
    cfg = make_cfg("crop_classifier", f"model={model}", "epochs=2")
    outcome, events = _train(cfg, classify_dataset, tmp_path / "run")
    assert outcome.status == "completed" and outcome.epochs_done == 2
    names = [e for e, _ in events]
    assert sorted(set(names), key=EXPECTED_EVENTS.index) == EXPECTED_EVENTS
    assert names.count("on_train_batch_end") == 2 * 3          # 12 images / batch 4
    fits = [p for e, p in events if e == "on_fit_epoch_end"]
    assert [p["epoch"] for p in fits] == [0, 1]
    assert {"balanced_accuracy", "accuracy", "macro_f1"} <= set(fits[0]["metrics"])
    assert all(np.isfinite(p["losses"]["loss"]) and p["lr"] > 0 and p["eta_s"] >= 0
               for p in fits)
    assert outcome.params["trainable"] == outcome.params["total"]
    assert set(outcome.per_class) == {"blue", "green", "red"}
    assert outcome.metrics["split"] == "test"                # the fixture has a test split
    assert (tmp_path / "run" / "weights" / "best.pt").is_file()
    # the merged model reloads with plain timm and predicts what the trainer measured
    merged, config = _reload_merged(tmp_path / "run")
    assert config["class_names"] == ["blue", "green", "red"]
    splits = load_splits(classify_dataset)
    ds = ImageClassDataset(splits.samples["test"], cfg.imgsz, train=False)
    with torch.no_grad():
        preds = merged(torch.stack([ds[i][0] for i in range(len(ds))])).argmax(1)
    labels = torch.tensor([ds[i][1] for i in range(len(ds))])
    assert (preds == labels).float().mean().item() == pytest.approx(outcome.metrics["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "efficientnet_b0"])
def test_lora_training_freezes_base_bit_for_bit(model, make_cfg, binary_dataset, tmp_path):
    cfg = make_cfg("crop_classifier", f"model={model}", "lora.enabled=true", "lora.rank=4",
                   "lr=0.01")
    torch.manual_seed(cfg.seed)
    base = create_classifier(cfg, 2, None).state_dict()
    outcome, _ = _train(cfg, binary_dataset, tmp_path / "run")
    assert outcome.status == "completed"
    share = outcome.params["trainable"] / outcome.params["total"]
    assert 0 < share < 0.2, outcome.params
    assert outcome.adapter_dir and (outcome.adapter_dir / "adapter_model.safetensors").is_file()
    trained = torch.load(tmp_path / "run" / "weights" / "last.pt", weights_only=False)["model"]
    head = "fc." if model == "resnet18" else "classifier."
    checked = changed_head = 0
    for name, tensor in trained.items():
        if "lora_" in name:
            continue
        plain = name.replace(".base_layer.", ".")
        if plain.startswith(head):
            changed_head += int(not torch.equal(tensor, base[plain]))
            continue
        assert torch.equal(tensor, base[plain]), f"base tensor {plain} changed"
        checked += 1
    assert checked > 50 and changed_head >= 1     # base intact (BN stats too), head trained
    adapters = load_file(outcome.adapter_dir / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k)
    # the merged model is plain timm, and base + adapter folder reproduce it
    merged, _ = _reload_merged(tmp_path / "run")
    torch.manual_seed(cfg.seed)
    adapted = lora.load_adapters(create_classifier(cfg, 2, None), outcome.adapter_dir)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(adapted.eval()(x), merged(x), atol=1e-4)
    assert not lora.has_lora(merged)


def test_local_pretrained_weights_file_and_base_resolution(make_cfg, tmp_path):
    cfg = make_cfg("crop_classifier")
    source = timm.create_model("resnet18", num_classes=5)
    weights = tmp_path / "base" / "resnet18.safetensors"
    weights.parent.mkdir()
    save_file(source.state_dict(), weights)
    path, message = resolve_timm_base(cfg, tmp_path / "base")
    assert path == str(weights) and "models/base" in message
    model = create_classifier(cfg, 2, path)   # a 5-class head becomes a fresh 2-class head
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 2
    none, message = resolve_timm_base(cfg, tmp_path / "empty")
    assert none is None and "from scratch" in message


def test_unknown_timm_model_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="timm has no model 'resnet_nope'"):
        create_classifier(make_cfg("crop_classifier", "model=resnet_nope"), 2, None)


def test_missing_split_is_a_clear_error(tmp_path):
    from src.errors import DatasetError
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="train split has no images"):
        load_splits(tmp_path)
