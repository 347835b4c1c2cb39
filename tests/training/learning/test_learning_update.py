"""One detector update, directly: it continues a saved adapter and never ends below it."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from src.training.learning.adapters import AdapterMeta, AdapterStore
from src.training.learning.detector_data import DetectorSample
from src.training.learning.detector_update import DetectorUpdate
from src.training.learning.settings import LearnSettings
from src.training.learning.updater import UpdateContext

pytestmark = pytest.mark.slow


def samples(n=4, size=64):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        image = np.full((size, size, 3), 100, np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        image[y:y + 24, x:x + 24] = (40, 40, 220)
        out.append(DetectorSample(str(i), image, np.array([[x, y, x + 24, y + 24]], np.float32),
                                  np.array([0])))
    return out


def test_update_keeps_the_adapter_it_started_from_when_no_epoch_beats_it(tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    base = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()
    data = samples()
    settings = LearnSettings(imgsz=64, max_epochs=2, lr=1e-2, batch=4, budget_s=60)
    ctx = UpdateContext(None, threading.Event(), None)
    first = DetectorUpdate(base, lambda: data, settings, 64)(ctx)
    assert first.adapted is not None and first.optimizer_state is not None
    store = AdapterStore(tmp_path)
    store.save_model(first.adapted.model, settings.lora(), first.adapted.targets,
                     AdapterMeta.now("tiny", first.val_metric))
    start, _meta = store.load_tensors()

    second = DetectorUpdate(base, lambda: data, settings, 64, store.folder, None,
                            first.optimizer_state)(ctx)
    # an untrained detector proposes nothing at conf 0.25 whatever its epochs do: every
    # score is 0, and a tie keeps the adapter the update started from, unchanged
    assert second.epochs >= 1 and "kept as it was" in second.reason
    assert second.optimizer_state is first.optimizer_state
    store.save_model(second.adapted.model, settings.lora(), second.adapted.targets,
                     AdapterMeta.now("tiny", second.val_metric))
    after, _meta = store.load_tensors()
    assert after.keys() == start.keys()
    assert all(torch.equal(after[k], start[k]) for k in start)
