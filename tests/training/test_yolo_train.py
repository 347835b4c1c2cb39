"""Real smoke trainings of the YOLO trainer: detect, segment, classify, full and LoRA; cancel,
pause, resume and out-of-memory retry. yolov8n built from yaml, 64 px, 2 epochs, 16 images."""
from __future__ import annotations

import threading
from copy import deepcopy

from pathlib import Path

import pytest
import torch

from src.training.control import RunControl
from src.training.events import EventBus
from src.training.lora import has_lora, load_adapters, merge_lora
from src.training.trainers import create_trainer
from src.training.yolo_trainer import INTERRUPTED, train_yolo
from tests.training.yolo_fixtures import write_image_folder, write_yolo_dataset, yolo_config

pytestmark = pytest.mark.slow
TASKS = ("detect", "segment", "classify")
HEAD = {"detect": "model.22.", "segment": "model.22.", "classify": "model.9."}


class Recorder:
    """Collects every event of a run."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[tuple[str, dict]] = []
        self.bus.on("*", lambda name, payload: self.events.append((name, payload)))

    def of(self, name: str) -> list[dict]:
        return [p for e, p in self.events if e == name]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo-data")
    return {"detect": write_yolo_dataset(root / "det"),
            "segment": write_yolo_dataset(root / "seg", segment=True),
            "classify": write_image_folder(root / "cls")}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Trains on first use and caches: runs(task, 'full' | 'lora') -> (outcome, Recorder)."""
    cache: dict = {}
    no_base = tmp_path_factory.mktemp("no-base")

    def get(task: str, kind: str):
        if (task, kind) not in cache:
            if kind == "full":
                cfg = yolo_config(task, class_weights=task == "detect")
            else:   # adapt the full run's model: a real base file to compare against
                base = get(task, "full")[0].merged_model
                cfg = yolo_config(task, lora=True, weights=str(base),
                                  train_head=task != "detect")
            rec = Recorder()
            run_dir = tmp_path_factory.mktemp(f"run-{task}-{kind}")
            outcome = train_yolo(cfg, data[task], run_dir, rec.bus, RunControl(),
                                 base_dir=no_base)
            cache[task, kind] = (outcome, rec)
        return cache[task, kind]
    return get


def _image(data, task):
    folder = data[task].parent / "images" / "val" if task != "classify" else data[task] / "val" / "red"
    return str(sorted(folder.glob("*.png"))[0])


@pytest.mark.parametrize("task", TASKS)
def test_full_training_emits_events_and_merged_model_predicts(task, runs, data):
    from ultralytics import YOLO

    outcome, rec = runs(task, "full")
    assert outcome.status == "completed" and outcome.epochs_done == 2
    assert outcome.adapter_dir is None
    assert "built from yolov8n" in outcome.base_model_source
    assert [p["epoch"] for p in rec.of("on_fit_epoch_end")] == [0, 1]
    batch_end = rec.of("on_train_batch_end")
    assert batch_end and all(p["losses"] and p["batches"] >= 1 for p in batch_end)
    assert [p["batch"] for p in batch_end if p["epoch"] == 0] == list(range(batch_end[0]["batches"]))
    assert rec.of("on_train_end")[-1]["status"] == "completed"
    fit = rec.of("on_fit_epoch_end")[-1]
    key = "metrics/accuracy_top1" if task == "classify" else "metrics/mAP50-95(B)"
    assert key in fit["metrics"] and fit["eta_s"] == 0.0
    assert set(outcome.per_class) == {"red", "blue"}
    assert outcome.params["share"] > 0.95
    names, matrix = outcome.metrics["confusion_labels"], outcome.metrics["confusion_matrix"]
    expected = ["blue", "red"] if task == "classify" else ["red", "blue", "background"]  # folders sort
    assert names == expected and len(matrix) == len(names)
    # the model's classes: a detection matrix's 'background' row is none of them
    assert outcome.metrics["class_names"] == [n for n in expected if n != "background"]
    true_counts = [sum(row) for row in matrix]          # rows: true class
    if task == "classify":
        assert true_counts == [2, 2] and fit["confusion_matrix"] and fit["class_names"] == names
    else:   # every val object is either matched to a class or missed (background column)
        assert true_counts[:2] == [2, 2]
        # the validation's first images with truth and predictions, for TensorBoard's grid
        samples = fit["samples"]
        assert samples and all(Path(s["path"]).is_file() for s in samples)
        assert sum(len(s["boxes"]) for s in samples) == 4        # the 4 val objects
        assert all(len(b) == 5 and 0 <= b[0] < b[2] <= 64 for s in samples for b in s["boxes"])
        assert all(len(b) == 6 and 0.25 <= b[5] <= 1 for s in samples for b in s["pred_boxes"])
        from src.training.tensorboard_log import prediction_grid
        fig = prediction_grid(samples, names)
        assert len(fig.axes) == 2 * len(samples)
    results = YOLO(str(outcome.merged_model)).predict(_image(data, task), imgsz=64, verbose=False)
    assert len(results) == 1
    if task == "classify":
        assert results[0].probs is not None and results[0].probs.data.shape[0] == 2


def test_class_weights_reach_the_detection_loss(runs):
    from ultralytics import YOLO

    outcome, _ = runs("detect", "full")
    assert "cls_pw=1.0" in outcome.base_model_source
    weights = YOLO(str(outcome.merged_model)).model.class_weights
    assert weights.shape == (2,) and torch.isclose(weights.float().mean(), torch.tensor(1.0))


def _state(path):
    from ultralytics.utils.patches import torch_load

    ckpt = torch_load(path, map_location="cpu")
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()


@pytest.mark.parametrize("task", TASKS)
def test_lora_keeps_base_bit_for_bit_and_changes_only_adapters_and_head(task, runs):
    base_out, _ = runs(task, "full")
    outcome, rec = runs(task, "lora")
    assert outcome.status == "completed" and outcome.adapter_dir is not None
    assert outcome.params["trainable"] < outcome.params["total"]
    assert "training" in rec.of("on_train_start")[0]["message"]
    base = _state(base_out.merged_model)
    trained = _state(outcome.last_checkpoint)   # unmerged adapters, as trained
    train_head = task != "detect"
    changed_base, changed_head, lora_b = [], [], []
    for name, value in trained.items():
        if "lora_" in name:
            lora_b += [name] if "lora_B" in name and value.abs().sum() > 0 else []
            continue
        same = torch.equal(value, base[name.replace(".base_layer", "")])
        if not same:
            (changed_head if name.startswith(HEAD[task]) else changed_base).append(name)
    assert changed_base == []            # every base tensor bit for bit, BN statistics included
    assert lora_b                         # the adapters learned something
    assert bool(changed_head) == train_head


def test_merged_model_matches_base_plus_adapters(runs, data):
    from ultralytics import YOLO

    base_out, _ = runs("detect", "full")
    outcome, _ = runs("detect", "lora")
    unmerged = YOLO(str(base_out.merged_model)).model.float().eval()
    load_adapters(unmerged, outcome.adapter_dir)
    assert has_lora(unmerged)
    merged = merge_lora(deepcopy(unmerged))
    assert not has_lora(merged)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = unmerged(x)[0], merged(x)[0]
        saved = YOLO(str(outcome.merged_model)).model.float().eval()(x)[0]
    scale = ref.abs().max()
    assert (out - ref).abs().max() <= 1e-4 * max(scale, 1.0)
    assert (saved - ref).abs().max() <= 1e-2 * max(scale, 1.0)    # model.pt is stored in fp16
    assert not any("lora" in k for k in _state(outcome.merged_model))
    result = YOLO(str(outcome.merged_model)).predict(_image(data, "detect"), imgsz=64, verbose=False)
    assert len(result) == 1


def test_cancel_within_a_batch_then_resume_continues_epochs(data, tmp_path):
    cfg = yolo_config("detect", lora=True)
    run_dir = tmp_path / "run"
    control, rec = RunControl(), Recorder()
    seen_paused: list[bool] = []

    def drive(_event, p):
        if (p["epoch"], p["batch"]) == (0, 0):
            control.pause()
            threading.Timer(0.3, control.resume).start()
        if (p["epoch"], p["batch"]) == (1, 1):
            control.request_stop()
    rec.bus.on("on_train_batch_end", drive)
    rec.bus.on("on_train_batch_start", lambda _e, p: seen_paused.append(control.paused))
    first = train_yolo(cfg, data["detect"], run_dir, rec.bus, control, base_dir=tmp_path)
    assert first.status == "cancelled"
    assert first.last_checkpoint == run_dir / "weights" / INTERRUPTED
    assert not any(seen_paused)           # no batch ran while paused
    after_stop = [p for p in rec.of("on_train_batch_start") if p["epoch"] == 1]
    assert [p["batch"] for p in after_stop] == [0, 1]      # stopped right after batch 1
    assert rec.of("on_train_end")[-1]["status"] == "cancelled"
    ckpt = torch.load(first.last_checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["optimizer"]["state"]
    assert has_lora(ckpt["ema"])

    again = Recorder()
    second = train_yolo(cfg, data["detect"], run_dir, again.bus, RunControl(), resume=True,
                        base_dir=tmp_path)
    assert second.status == "completed" and second.epochs_done == 2
    assert again.of("on_train_start")[0]["epoch"] == 1
    assert [p["epoch"] for p in again.of("on_fit_epoch_end")] == [1]
    assert "resuming from" in second.base_model_source
    assert not first.last_checkpoint.exists()


def test_out_of_memory_halves_the_batch_and_continues(data, tmp_path):
    cfg = yolo_config("classify")
    rec, raised = Recorder(), []

    def explode(_event, p):
        if (p["epoch"], p["batch"]) == (1, 0) and not raised:
            raised.append(True)
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    rec.bus.on("on_train_batch_end", explode)
    outcome = create_trainer(cfg).train(data["classify"], tmp_path / "run", rec.bus,
                                        RunControl(), base_dir=tmp_path)
    assert raised and outcome.status == "completed" and outcome.epochs_done == 2
    assert "retrying with batch 2" in outcome.base_model_source
    assert [p["epoch"] for p in rec.of("on_fit_epoch_end")] == [0, 1]
    assert rec.of("on_train_start")[-1]["epoch"] == 1      # continued, not restarted
