"""SampleStore and AdapterStore: session files written atomically, listed, reloaded, removed."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from src.errors import StorageError
from src.training.config import LoraSettings
from src.training.learning.adapters import AdapterMeta, AdapterStore
from src.training.learning.samples import SampleStore
from src.training.lora import inject_lora, load_adapters


def test_samples_round_trip_replace_remove_clear(tmp_path):
    store = SampleStore(tmp_path / "samples")
    assert store.list() == [] and len(store) == 0
    boxes = np.array([[1, 2, 30, 40]], dtype=np.float32)
    image = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
    store.add("frame-1", arrays={"boxes": boxes}, images={"image": image},
              meta={"frame_id": 1, "classes": [np.int64(3)]})
    store.add("frame-2", meta={"frame_id": 2})
    assert store.ids() == ["frame-1", "frame-2"] and "frame-1" in store
    sample = store.get("frame-1")
    assert np.array_equal(sample.arrays["boxes"], boxes)
    assert np.array_equal(sample.images["image"], image)          # PNG is lossless
    assert sample.meta == {"frame_id": 1, "classes": [3]}
    assert store.get("frame-2").arrays == {}

    store.add("frame-1", arrays={"boxes": boxes * 2}, meta={"frame_id": 1, "again": True})
    again = store.get("frame-1")
    assert again.meta["again"] and "image" not in again.images
    assert not list((tmp_path / "samples").glob("frame-1.*.png"))
    assert store.ids() == ["frame-2", "frame-1"]

    assert store.remove("frame-2") and not store.remove("frame-2")
    with pytest.raises(StorageError, match="frame-2"):
        store.get("frame-2")
    store.clear()
    assert store.ids() == [] and not any((tmp_path / "samples").iterdir())


def test_sample_without_metadata_is_not_listed(tmp_path):
    store = SampleStore(tmp_path)
    store.add("ok", arrays={"a": np.zeros(2)})
    (tmp_path / "crashed.npz").write_bytes(b"half")             # a crash before the json
    (tmp_path / "junk.json").write_text("{not json")
    assert store.ids() == ["ok"]


def test_bad_sample_id_rejected(tmp_path):
    with pytest.raises(ValueError):
        SampleStore(tmp_path).add("../escape")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_adapter_model_save_load_discard(tmp_path):
    torch.manual_seed(0)
    settings = LoraSettings(enabled=True, rank=2, alpha=4.0)
    base = Tiny()
    trained = Tiny()
    trained.load_state_dict(base.state_dict())
    inject_lora(trained, settings, ["conv", "fc"])
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.normal_()
    store = AdapterStore(tmp_path / "session")
    assert not store.exists() and store.meta() is None and store.load_into(Tiny()) is None
    store.save_model(trained, settings, ["conv", "fc"],
                     AdapterMeta.now("model:3", 0.42, "mAP50", samples=7, reason="better"))
    meta = store.meta()
    assert (meta.base_ref, meta.metric, meta.metric_name, meta.samples) == ("model:3", 0.42,
                                                                             "mAP50", 7)
    assert meta.extra == {"reason": "better"} and meta.created_at > 0

    x = torch.randn(2, 3, 8, 8)
    fresh = Tiny()
    fresh.load_state_dict(base.state_dict())
    assert store.load_into(fresh).metric == 0.42
    assert torch.allclose(fresh(x), trained(x), atol=1e-6)
    other = Tiny()
    other.load_state_dict(base.state_dict())
    load_adapters(other, store.folder)                   # the lora.py format, readable as is
    assert torch.allclose(other(x), trained(x), atol=1e-6)

    assert store.discard() and not store.exists() and not store.discard()
    assert not store.folder.exists()


def test_adapter_tensors_save_replace(tmp_path):
    store = AdapterStore(tmp_path)
    store.save_tensors({"w": torch.ones(3)}, AdapterMeta.now("sam2_t.pt", 0.8, "iou"),
                       config={"layers": ["a"]})
    store.save_tensors({"w": torch.full((3,), 2.0)}, AdapterMeta.now("sam2_t.pt", 0.9, "iou"),
                       config={"layers": ["a"]})
    tensors, meta = store.load_tensors()
    assert torch.equal(tensors["w"], torch.full((3,), 2.0)) and meta.metric == 0.9
    assert store.config()["layers"] == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]   # no temp folder left


def test_optimizer_state_goes_with_the_adapter_it_trained(tmp_path):
    store = AdapterStore(tmp_path)
    assert store.load_optimizer() is None
    weight = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    weight.sum().backward()
    optimizer.step()
    with pytest.raises(Exception, match="no adapter"):
        store.save_optimizer(optimizer.state_dict())              # nothing to go with yet
    store.save_tensors({"w": weight.detach()}, AdapterMeta.now("m", 0.5))
    store.save_optimizer(optimizer.state_dict())
    loaded = store.load_optimizer()
    assert torch.equal(loaded["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    fresh = torch.optim.AdamW([nn.Parameter(torch.ones(3))], lr=0.1)
    fresh.load_state_dict(loaded)                                  # usable as it comes back
    assert fresh.state_dict()["state"][0]["step"] == 1

    store.save_tensors({"w": weight.detach() * 2}, AdapterMeta.now("m", 0.6))
    assert store.load_optimizer() is None           # saved with the previous adapter: unused
    store.save_optimizer(optimizer.state_dict())
    (tmp_path / "optimizer.pt").write_bytes(b"torn")
    assert store.load_optimizer() is None           # unreadable: a fresh optimizer, no crash
    store.save_optimizer(optimizer.state_dict())
    assert store.discard() and not (tmp_path / "optimizer.pt").exists()
