"""LoRA helpers on real models: target selection, injection, freezing, merging, adapter files."""
from __future__ import annotations

import json
from copy import deepcopy

import pytest
import torch
from torch import nn

from src.errors import ConfigError
from src.training.config import LoraSettings
from src.training.lora import (ADAPTER_CONFIG, ADAPTER_WEIGHTS, freeze_base, frozen_modules_eval,
                               has_lora, inject_lora, load_adapters, lora_targets, merge_lora,
                               param_counts, save_adapters, yolo_head_prefixes,
                               yolo_neck_prefixes)

SETTINGS = LoraSettings(enabled=True, rank=4, alpha=8.0)


@pytest.fixture(scope="module")
def yolo():
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()


class Mixed(nn.Module):
    """A dense conv, a depthwise conv, a dilated conv, a '.dfl' conv and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.dfl = nn.Module()
        self.dfl.conv = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.dfl.conv(self.dilated(self.depthwise(self.bn(self.stem(x)))))
        return self.head(x.mean((2, 3)))


def _randomise_adapters(model: nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)


def test_targets_skip_grouped_dilated_and_dfl_convs():
    assert lora_targets(Mixed(), "all") == ["stem", "head"]
    assert lora_targets(Mixed(), "head", ("head",)) == ["head"]
    assert lora_targets(Mixed(), r"regex:st.m") == ["stem"]


def test_placements_on_yolo(yolo):
    head = yolo_head_prefixes(yolo)
    assert head == ("model.22.",)
    every = lora_targets(yolo, "all", head)
    in_head = lora_targets(yolo, "head", head)
    neck_head = lora_targets(yolo, "neck+head", head)
    assert set(in_head) < set(neck_head) < set(every)
    assert all(t.startswith("model.22.") for t in in_head)
    assert yolo_neck_prefixes(yolo)[0] == "model.10." and "model.21." in yolo_neck_prefixes(yolo)
    assert not any(".dfl" in t for t in every)


@pytest.mark.parametrize("layers, message", [("regex:nothing.*", "selects no"),
                                             ("everything", "unknown adapter placement"),
                                             ("head", "needs to know where the head is")])
def test_bad_placements_are_config_errors(layers, message):
    with pytest.raises(ConfigError, match=message) as err:
        lora_targets(Mixed(), layers)
    assert err.value.field == "lora.layers"


def test_neck_needs_a_yolo_layout():
    with pytest.raises(ConfigError, match="no YOLO backbone"):
        lora_targets(Mixed(), "neck+head", ("head",))


def test_injection_starts_as_the_base_and_freezing_leaves_adapters_and_head(yolo):
    model = deepcopy(yolo)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
    targets = lora_targets(model, "all", yolo_head_prefixes(model))
    inject_lora(model, SETTINGS, targets)
    with torch.no_grad():
        assert torch.equal(model(x)[0], before)       # B = 0: same function at step 0
    freeze_base(model)
    only_adapters = param_counts(model)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    freeze_base(model, ("model.22.",))
    with_head = param_counts(model)
    assert 0 < only_adapters["trainable"] < with_head["trainable"] < with_head["total"]
    assert only_adapters["share"] < 0.15
    assert with_head["total"] == only_adapters["total"]


def test_frozen_batchnorm_keeps_base_statistics():
    model = Mixed()
    inject_lora(model, SETTINGS, ["stem", "head"])
    freeze_base(model)
    model.train()
    frozen_modules_eval(model)
    stats = model.bn.running_mean.clone()
    model(torch.rand(4, 3, 16, 16) * 5)
    assert not model.bn.training and torch.equal(model.bn.running_mean, stats)


def _neck_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last neck layer's output: a randomly initialised head maps everything to ~its biases."""
    captured = []
    hook = model.model[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model(x)
    hook.remove()
    return captured[0]


def test_merge_gives_a_plain_model_with_the_same_outputs(yolo):
    model = deepcopy(yolo)
    inject_lora(model, SETTINGS, lora_targets(model, "all", yolo_head_prefixes(model)))
    _randomise_adapters(model)
    x = torch.rand(2, 3, 64, 64)
    unmerged, base_out = _neck_features(model, x), _neck_features(yolo, x)
    merged = _neck_features(merge_lora(model), x)
    assert not has_lora(model)
    assert not any("lora" in k or "base_layer" in k for k in model.state_dict())
    assert set(model.state_dict()) == set(yolo.state_dict())
    scale = unmerged.abs().max()
    assert (merged - unmerged).abs().max() <= 1e-4 * scale
    assert (unmerged - base_out).abs().max() > 1e-2 * scale   # the adapters did change outputs


def test_adapters_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(1)
    base = Mixed().eval()
    trained = deepcopy(base)
    inject_lora(trained, SETTINGS, ["stem"])
    _randomise_adapters(trained)
    with torch.no_grad():
        trained.head.weight.add_(1.0)                # a fully trained head travels too
    out = save_adapters(trained, tmp_path / "adapters", SETTINGS, ["stem"], ("head.",),
                        extra={"base": "mixed"})
    assert sorted(p.name for p in out.iterdir()) == [ADAPTER_CONFIG, ADAPTER_WEIGHTS]
    config = json.loads((out / ADAPTER_CONFIG).read_text())
    assert config["targets"] == ["stem"] and config["peft"]["r"] == 4
    assert config["extra"] == {"base": "mixed"}
    save_adapters(trained, out, SETTINGS, ["stem"], ("head.",))   # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["adapters"]    # no temp folders left

    restored = load_adapters(deepcopy(base), out)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(restored(x), trained(x), atol=1e-6)
        assert not torch.allclose(base(x), trained(x), atol=1e-3)


def test_loading_from_a_folder_without_adapters_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not an adapter folder"):
        load_adapters(Mixed(), tmp_path)
