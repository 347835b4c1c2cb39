"""Cooperative control of a timm training: cancel within one batch, pause, exact resume."""
from __future__ import annotations

import threading

import pytest
import torch

from src.db import runs
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.runner import start_training
from src.training.timm_trainer import train_timm


def test_cancel_stops_within_one_batch_with_resumable_checkpoint(project, make_cfg,
                                                                 classify_dataset):
    cfg = make_cfg("crop_classifier", "model=test_resnet", "epochs=2")
    bus, control, events = EventBus(), RunControl(), []
    bus.on("*", lambda e, p: events.append((e, p)))

    def stop_after_first_batch(_e, p):
        if p["epoch"] == 0 and p["batch"] == 0:
            control.request_stop()
    bus.on("on_train_batch_end", stop_after_first_batch)
    run = start_training(project, cfg, classify_dataset, bus=bus, control=control)

    assert run.status == "cancelled" and run.finished_at
    names = [e for e, _ in events]
    stop_at = names.index("on_train_batch_end")
    assert "on_train_batch_start" not in names[stop_at + 1:]     # not one more batch
    end = [p for e, p in events if e == "on_train_end"][0]
    assert end["status"] == "cancelled"
    ckpt = torch.load(project.abspath(run.run_dir) / "weights" / "last.pt", weights_only=False)
    assert ckpt["progress"]["next_epoch"] == 0 and "optimizer" in ckpt
    assert ckpt["optimizer"]["state"]          # one optimizer step was taken and saved
    assert runs.list_epochs(project.conn, run.id) == []

    resumed = start_training(project, None, None, resume_run_id=run.id)
    assert resumed.status == "completed"
    assert [e.epoch for e in runs.list_epochs(project.conn, run.id)] == [0, 1]


def test_pause_blocks_between_batches_until_resumed(make_cfg, classify_dataset, tmp_path):
    cfg = make_cfg("crop_classifier", "model=test_resnet")
    bus, control = EventBus(), RunControl()
    batches: list[int] = []
    observed: dict = {}
    bus.on("on_train_batch_end", lambda _e, p: batches.append(p["batch"]))

    def pause_once(_e, p):
        if p["batch"] == 0:
            control.pause()
    bus.on("on_train_batch_end", pause_once)

    def supervisor():
        while not control.paused:
            threading.Event().wait(0.01)
        threading.Event().wait(0.3)
        observed["while_paused"] = list(batches)
        threading.Event().wait(0.3)
        observed["still_paused"] = list(batches)
        control.resume()

    watcher = threading.Thread(target=supervisor)
    watcher.start()
    outcome = train_timm(cfg, classify_dataset, tmp_path / "run", bus, control)
    watcher.join(timeout=30)
    assert observed["while_paused"] == observed["still_paused"] == [0]
    assert batches == [0, 1, 2] and outcome.status == "completed"


@pytest.mark.slow
def test_resume_between_epochs_reproduces_uninterrupted_training(make_cfg, classify_dataset,
                                                                 tmp_path):
    """Optimizer, scheduler and RNG state come back: same weights as never stopping."""
    cfg = make_cfg("crop_classifier", "model=test_resnet", "epochs=2",
                   "imbalance.balanced_sampler=true")
    train_timm(cfg, classify_dataset, tmp_path / "a", EventBus(), RunControl())  # reference run

    bus, control, lrs = EventBus(), RunControl(), []
    bus.on("on_model_save", lambda _e, p: control.request_stop())
    first = train_timm(cfg, classify_dataset, tmp_path / "b", bus, control)
    assert first.status == "cancelled" and first.epochs_done == 1
    bus2 = EventBus()
    bus2.on("on_train_epoch_start", lambda _e, p: lrs.append(p["epoch"]))
    second = train_timm(cfg, classify_dataset, tmp_path / "b", bus2, RunControl(), resume=True)
    assert second.status == "completed" and lrs == [1]         # epoch numbering continues

    a = torch.load(tmp_path / "a" / "weights" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "weights" / "last.pt", weights_only=False)
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor.float(), b["model"][name].float(), atol=1e-6), name
    assert a["progress"] == {**b["progress"], "elapsed_s": a["progress"]["elapsed_s"]}
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]
