"""Run manager: records, outputs, registration, TensorBoard, queue, disk check, CLI, kill+resume."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import namedtuple
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.cli import main as cli_main
from src.db import datasets as datasets_repo
from src.db import model_versions, runs
from src.db.records import DatasetRecord, TrainingRun
from src.errors import DatasetError, TrainingError
from src.training.control import RunControl
from src.training.device import resolve_device
from src.training.events import EventBus
from src.training.runner import MachineLock, start_training

REPO = Path(__file__).resolve().parents[2]


def _register_dataset(project, source: Path, name: str = "crops") -> DatasetRecord:
    dest = project.datasets_dir / name / "v1"
    shutil.copytree(source, dest)
    return datasets_repo.add_dataset(project.conn, DatasetRecord(
        name=name, version=1, task="crops", path=project.relpath(dest), content_hash="abc123"))


@pytest.mark.slow
def test_completed_run_writes_outputs_and_registers_model(project, make_cfg, classify_dataset):
    _register_dataset(project, classify_dataset)
    cfg = make_cfg("defect_classifier", "model=test_efficientnet", "epochs=2",
                   "log_images_every=1", "lora.enabled=true")
    run = start_training(project, cfg, "crops:v1")
    assert run.status == "completed" and run.started_at and run.finished_at
    assert "from scratch" in run.base_model
    run_dir = project.abspath(run.run_dir)
    assert run_dir.name == f"{run.id}-defect_classifier"
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["dataset"] == {"name": "crops", "version": 1, "hash": "abc123",
                               "ref": "crops:v1", "path": meta["dataset"]["path"]}
    assert meta["classes"] == ["blue", "green", "red"]
    assert meta["params"]["trainable"] < meta["params"]["total"]
    assert {"torch", "timm", "python"} <= set(meta["libraries"])
    assert meta["timings"]["duration_s"] > 0
    report = json.loads((run_dir / "report.json").read_text())
    assert "focal loss" in report["imbalance"]["loss"]
    assert any("balanced sampler" in note for note in report["imbalance"]["applied"])
    assert len(report["confusion_matrix"]) == 3 and set(report["per_class"]) == set(meta["classes"])
    assert "| red |" in (run_dir / "report.md").read_text()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lora"]["enabled"] is True
    assert [e.epoch for e in runs.list_epochs(project.conn, run.id)] == [0, 1]

    # trained on a crops dataset: the two-stage pipeline's crop classifier
    (mv,) = model_versions.list_model_versions(project.conn, "crop_classifier")
    assert (mv.name, mv.version, mv.run_id, mv.is_active, mv.format) == \
        ("defect_classifier", 1, run.id, True, "safetensors")
    folder = project.abspath(mv.path).parent
    assert folder == project.models_dir / "crop_classifier" / "defect_classifier" / "v1"
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "model_config.json",
                                                  "metadata.json", "adapters"}

    # fine-tune from the registered version: 'model:<id>' as base weights
    again = start_training(project, make_cfg("defect_classifier", "model=test_efficientnet",
                                             f"weights=model:{mv.id}"), "crops")
    assert again.status == "completed"
    assert again.base_model.startswith("base: registered model defect_classifier v1")
    versions = model_versions.list_model_versions(project.conn, "crop_classifier")
    assert [(m.version, m.is_active) for m in versions] == [(1, True), (2, False)]
    assert versions[1].run_id == again.id
    assert versions[1].parent_id == mv.id and versions[1].lineage[0]["display_name"] == \
        mv.display_name
    assert {f.role for f in versions[1].files} >= {"weights", "metadata", "model_config"}


def test_a_paused_run_shows_as_paused_in_the_store(project, make_cfg, binary_dataset):
    _register_dataset(project, binary_dataset, "views")
    cfg = make_cfg("crop_classifier", "model=test_resnet", "epochs=1")
    bus, control = EventBus(), RunControl()
    seen: dict = {}
    bus.on("on_train_batch_end", lambda _e, p: control.pause() if p["batch"] == 0 else None)

    def supervisor():  # reads the store from its own connection, as the GUI would
        conn = project.connect()
        while not control.paused:
            threading.Event().wait(0.01)
        for _ in range(300):
            statuses = [r.status for r in runs.list_runs(conn)]
            if statuses == ["paused"]:
                break
            threading.Event().wait(0.01)
        seen["while_paused"] = statuses
        control.resume()
        conn.close()

    watcher = threading.Thread(target=supervisor)
    watcher.start()
    run = start_training(project, cfg, "views", bus=bus, control=control)
    watcher.join(timeout=30)
    assert seen["while_paused"] == ["paused"]
    assert run.status == "completed"


def test_tensorboard_has_scalars_images_and_hparams(project, make_cfg, binary_dataset):
    cfg = make_cfg("crop_classifier", "model=test_resnet", "epochs=2", "log_images_every=1")
    run = start_training(project, cfg, binary_dataset)
    acc = EventAccumulator(str(project.abspath(run.run_dir) / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "val/balanced_accuracy", "val/accuracy", "lr"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("val/balanced_accuracy")] == [0, 1]
    assert {"confusion_matrix", "predictions"} <= set(tags["images"])
    hparams = EventAccumulator(str(project.abspath(run.run_dir) / "tensorboard" / "hparams"))
    hparams.Reload()
    assert "hparam/balanced_accuracy" in hparams.Tags()["scalars"]


def test_second_request_is_queued_then_run_after_the_first(project, make_cfg, binary_dataset):
    cfg = make_cfg("crop_classifier", "model=test_resnet", "name=first")
    bus, control = EventBus(), RunControl()
    paused = threading.Event()

    def pause_first(_e, p):
        if p.get("batch") == 0 and not paused.is_set():
            control.pause()
            paused.set()
    bus.on("on_train_batch_end", pause_first)
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        run=start_training(project, cfg, binary_dataset, bus=bus, control=control)))
    worker.start()
    assert paused.wait(60)
    second = start_training(project, make_cfg("crop_classifier", "model=test_resnet",
                                              "name=second"), binary_dataset)
    assert second.status == "queued" and second.started_at is None
    assert (project.abspath(second.run_dir) / "config.yaml").is_file()
    control.resume()
    worker.join(120)
    assert result["run"].status == "completed"
    done = runs.get_run(project.conn, second.id)       # drained by the first process
    assert done.status == "completed" and done.started_at >= result["run"].finished_at


@pytest.mark.slow
def test_queued_run_survives_and_lock_is_machine_wide(project, make_cfg, binary_dataset):
    holder = MachineLock()
    assert holder.try_acquire()
    try:
        run = start_training(project, make_cfg("crop_classifier", "model=test_resnet"),
                             binary_dataset)
        assert run.status == "queued"
    finally:
        holder.release()
    assert cli_main(["--project", str(project.root), "train", "queue"]) == 0
    assert runs.get_run(project.conn, run.id).status == "completed"


def test_not_enough_disk_space_is_refused(project, make_cfg, binary_dataset, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 5 * 2**20,
                                                               5 * 2**20))
    with pytest.raises(TrainingError, match=r"not enough free disk space.*MB needed, 5 MB free"):
        start_training(project, make_cfg("crop_classifier"), binary_dataset)
    assert runs.list_runs(project.conn) == []


def test_wrong_dataset_task_and_unknown_dataset_are_refused(project, make_cfg, classify_dataset):
    datasets_repo.add_dataset(project.conn, DatasetRecord(name="boxes", version=1, task="detect",
                                                          path=str(classify_dataset)))
    with pytest.raises(DatasetError, match="'detect' dataset but this config trains 'classify'"):
        start_training(project, make_cfg("crop_classifier"), "boxes")
    with pytest.raises(DatasetError, match="no dataset 'nope'"):
        start_training(project, make_cfg("crop_classifier"), "nope")


def test_stale_running_run_is_failed_and_completed_run_not_resumable(project, make_cfg,
                                                                     binary_dataset):
    stale = runs.add_run(project.conn, TrainingRun(name="old", task="classify",
                                                   model_type="timm", status="running"))
    run = start_training(project, make_cfg("crop_classifier", "model=test_resnet"),
                         binary_dataset)
    assert run.status == "completed"
    old = runs.get_run(project.conn, stale.id)
    assert old.status == "failed" and f"--resume {stale.id}" in old.error
    with pytest.raises(TrainingError, match="is completed"):
        start_training(project, None, None, resume_run_id=run.id)


def test_device_resolution_on_this_machine():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda:0", "mps")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA GPU is available"):
            resolve_device("cuda:0")
        with pytest.raises(TrainingError, match="no CUDA GPU"):
            resolve_device("0,1")


def test_cli_list_and_config_errors(project, capsys):
    assert cli_main(["--project", str(project.root), "train", "configs/nope.yaml",
                     "--dataset", "x"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert cli_main(["--project", str(project.root), "train",
                     str(REPO / "configs/crop_classifier.yaml"), "--dataset", "x",
                     "epoch=3"]) == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err
    runs.add_run(project.conn, TrainingRun(name="waiting", task="classify", model_type="timm"))
    assert cli_main(["--project", str(project.root), "train", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in listed] == [("waiting", "queued")]


@pytest.mark.skipif(sys.platform == "win32",
                    reason="os.kill(pid, SIGTERM) terminates the process on Windows")
def test_sigterm_stops_the_cli_gracefully(project, binary_dataset, capsys, monkeypatch):
    """The CLI's SIGTERM handler cancels after the current batch; the run is resumable."""
    from src.training import timm_trainer
    real_emit = timm_trainer._TimmRun.emit

    def emit(self, event, **payload):
        real_emit(self, event, **payload)
        if event == "on_train_batch_end" and payload["epoch"] == 1 and payload["batch"] == 0:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(timm_trainer._TimmRun, "emit", emit)
    before = signal.getsignal(signal.SIGTERM)
    code = cli_main(["--project", str(project.root), "train", str(REPO / "configs" /
                     "crop_classifier.yaml"), "--dataset", str(binary_dataset), "model=test_resnet",
                     "epochs=3", "batch=4", "imgsz=32", "workers=0", "device=cpu", "--events",
                     "tensorboard=false"])
    assert code == 130 and signal.getsignal(signal.SIGTERM) is before
    captured = capsys.readouterr()
    assert "SIGTERM: stopping after the current batch" in captured.err
    events = [json.loads(line) for line in captured.out.splitlines()]
    batches = [(e["epoch"], e["batch"]) for e in events if e["event"] == "on_train_batch_end"]
    assert batches[-1] == (1, 0)                      # no batch after the signal
    (run,) = runs.list_runs(project.conn)
    assert run.status == "cancelled" and events[-1]["status"] == "cancelled"


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX extra: no SIGUSR1 here")
def test_sigusr1_pauses_and_sigusr2_resumes_the_cli(project, binary_dataset, capsys,
                                                    monkeypatch):
    from src.training import timm_trainer
    real_emit = timm_trainer._TimmRun.emit
    seen: dict = {}

    def emit(self, event, **payload):
        real_emit(self, event, **payload)
        if event == "on_train_batch_end" and payload["batch"] == 0:
            os.kill(os.getpid(), signal.SIGUSR1)           # pause after batch 0
            seen["paused"] = self.control.paused
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR2)).start()
    monkeypatch.setattr(timm_trainer._TimmRun, "emit", emit)
    code = cli_main(["--project", str(project.root), "train", str(REPO / "configs" /
                     "crop_classifier.yaml"), "--dataset", str(binary_dataset), "model=test_resnet",
                     "epochs=1", "batch=4", "imgsz=32", "workers=0", "device=cpu", "--events",
                     "tensorboard=false"])
    captured = capsys.readouterr()
    assert code == 0 and seen["paused"] is True
    assert "paused (send resume to continue)" in captured.err and "resumed" in captured.err
    batches = [e["batch"] for e in map(json.loads, captured.out.splitlines())
               if e["event"] == "on_train_batch_end"]
    assert batches == [0, 1, 2]


def _cli(project_root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", "--project", str(project_root), "train",
                             *args, "--events"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _run_until(proc: subprocess.Popen, epoch: int, sig: int) -> list[dict]:
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        e = events[-1]
        if e["event"] == "on_train_batch_end" and e["epoch"] == epoch and e["batch"] == 0:
            proc.send_signal(sig)
            break
    proc.stdout.read()
    proc.wait(60)
    return events


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills with SIGKILL (POSIX)")
def test_sigkill_mid_epoch_then_resume_leaves_no_gaps(project, binary_dataset):
    """A killed `train --events` child resumes with epoch metrics 0..N-1, each exactly once."""
    root = project.root
    first = _cli(root, "configs/crop_classifier.yaml", "--dataset", str(binary_dataset),
                 "model=test_resnet", "epochs=3", "batch=4", "imgsz=32", "workers=0",
                 "device=cpu", "patience=0", "tensorboard=false")
    events = _run_until(first, epoch=1, sig=signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    run_id = next(e["run_id"] for e in events if "run_id" in e)
    assert runs.get_run(project.conn, run_id).status == "running"     # died without a word
    assert [e.epoch for e in runs.list_epochs(project.conn, run_id)] == [0]

    second = _cli(root, "--resume", str(run_id))
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "on_train_epoch_start"] == [1, 2]
    assert events[-1]["status"] == "completed"
    assert [e.epoch for e in runs.list_epochs(project.conn, run_id)] == [0, 1, 2]
    assert runs.get_run(project.conn, run_id).status == "completed"


@pytest.mark.slow
def test_yolo_detect_run_through_the_runner(project, make_cfg, detect_dataset):
    """The runner dispatches YOLO configs to train_yolo and registers its model.pt."""
    cfg = make_cfg("detection", "imgsz=32", "log_images_every=1")
    run = start_training(project, cfg, detect_dataset.parent)
    assert run.status == "completed", run.error
    assert "from scratch" in run.base_model
    assert [e.epoch for e in runs.list_epochs(project.conn, run.id)] == [0]
    (mv,) = model_versions.list_model_versions(project.conn, "detect")
    assert mv.is_active and mv.format == "pt"
    assert project.abspath(mv.path) == project.models_dir / "detect" / "detector" / "v1" / "model.pt"
    from ultralytics import YOLO
    assert YOLO(str(project.abspath(mv.path))).task == "detect"
    acc = EventAccumulator(str(project.abspath(run.run_dir) / "tensorboard"))
    acc.Reload()
    assert any(t.startswith("val/") for t in acc.Tags()["scalars"])
    assert (project.abspath(run.run_dir) / "report.md").is_file()


def test_failure_is_recorded_and_reraised(project, make_cfg, tmp_path):
    broken = tmp_path / "broken"
    (broken / "train" / "red").mkdir(parents=True)
    (broken / "val" / "red").mkdir(parents=True)
    (broken / "train" / "red" / "0.png").write_bytes(b"not a png")
    (broken / "val" / "red" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image"):
        start_training(project, make_cfg("crop_classifier", "model=test_resnet"), broken)
    (run,) = runs.list_runs(project.conn)
    assert run.status == "failed" and "cannot read image" in run.error and run.finished_at
