"""Issue 9 item 1: a model file LabelLoop did not write never runs code when training.

The malicious file is a real pickle whose `__reduce__` runs a shell command creating a
marker file; every refusal is checked by the marker's absence.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from src.cli import main as cli_main
from src.db import model_versions as models_repo
from src.db import runs as runs_repo
from src.db.records import TrainingRun
from src.errors import TrainingError
from tests.training.yolo_fixtures import write_yolo_dataset


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_pickle(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Evil(marker), "optimizer": {}}, path)
    return path


def _train(project, *args: str) -> int:
    return cli_main(["--project", str(project.root), "train", *args])


TINY = ("epochs=1", "imgsz=64", "batch=4", "device=cpu", "workers=0", "tensorboard=false",
        "patience=0")


def test_the_malicious_pickle_really_runs_code_when_unpickled(tmp_path):
    """The fixture is a real threat: loading it without weights_only runs the command."""
    marker = tmp_path / "pwned"
    path = evil_pickle(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_untrusted_weights_file_is_refused_before_any_unpickling(project, tmp_path, capsys):
    data = write_yolo_dataset(tmp_path / "data")
    marker = tmp_path / "pwned"
    evil = evil_pickle(tmp_path / "gift" / "best.pt", marker)
    code = _train(project, "configs/detection.yaml", "--dataset", str(data.parent),
                  f"weights={evil}", *TINY)
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert "not written by LabelLoop" in err and "--trust" in err and len(err.splitlines()) == 1
    assert runs_repo.list_runs(project.conn) == []      # nothing recorded


def test_planted_yolo_checkpoint_is_refused_on_resume(project, tmp_path, capsys):
    marker = tmp_path / "pwned"
    run_dir = project.runs_dir / "1-detector"
    run = runs_repo.add_run(project.conn, TrainingRun(
        name="detector", task="detect", model_type="yolo", status="failed",
        run_dir=project.relpath(run_dir) if run_dir.parent.mkdir(parents=True) is None else ""))
    evil_pickle(run_dir / "weights" / "last.pt", marker)
    code = _train(project, "--resume", str(run.id))
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert f"train --resume {run.id} --trust" in err
    assert runs_repo.get_run(project.conn, run.id).status == "failed"   # not claimed


def test_planted_timm_checkpoint_loads_only_as_tensors(tmp_path):
    from src.training.timm_trainer import _load_checkpoint_file

    marker = tmp_path / "pwned"
    with pytest.raises(TrainingError, match="not one LabelLoop wrote"):
        _load_checkpoint_file(evil_pickle(tmp_path / "last.pt", marker), "cpu")
    assert not marker.exists()


@pytest.mark.slow
def test_a_benign_file_trains_once_trusted_and_our_own_files_are_trusted(project, tmp_path,
                                                                          capsys):
    from ultralytics import YOLO

    data = write_yolo_dataset(tmp_path / "data", n_train=4, n_val=2)
    benign = tmp_path / "colleague" / "yolov8n-custom.pt"
    benign.parent.mkdir()
    YOLO("yolov8n.yaml").save(benign)
    args = ("configs/detection.yaml", "--dataset", str(data.parent), f"weights={benign}", *TINY)
    assert _train(project, *args) == 2
    assert "not written by LabelLoop" in capsys.readouterr().err
    assert _train(project, *args, "--trust") == 0
    capsys.readouterr()
    (run,) = runs_repo.list_runs(project.conn)
    assert run.status == "completed"
    weights = project.abspath(run.run_dir) / "weights"
    from src.training import trust
    for name in ("last.pt", "best.pt"):     # written by the run: a resume may load them
        assert models_repo.trusted_origin(project.conn,
                                          trust.sha256_file(weights / name)) == "run"
    (mv,) = models_repo.list_model_versions(project.conn, "detect")
    assert mv.classes == ["red", "blue"] and mv.model_type == "yolo"
    assert mv.display_name.startswith("detect-") and "mAP50-95=" in mv.display_name
    assert mv.dataset["path"] and mv.parent_id is None

    # fine-tuning from a registered version whose weights were tampered with is refused
    path = project.abspath(mv.path)
    path.write_bytes(path.read_bytes() + b"\0")
    assert _train(project, "configs/detection.yaml", "--dataset", str(data.parent),
                  f"weights=model:{mv.id}", *TINY) == 2
    assert "changed since it was registered" in capsys.readouterr().err


def test_models_trust_file_vouches_for_its_current_content_only(project, tmp_path, capsys):
    from src.training import trust

    path = tmp_path / "colleague.pt"
    path.write_bytes(b"pretend checkpoint")
    assert cli_main(["--project", str(project.root), "models", "trust", str(path)]) == 0
    assert "trusted" in capsys.readouterr().out and trust.is_trusted(project.conn, path)
    path.write_bytes(b"pretend checkpoint, edited")
    assert not trust.is_trusted(project.conn, path)


@pytest.mark.slow
def test_a_runs_own_checkpoints_resume_without_trust_but_not_once_altered(project, tmp_path,
                                                                          capsys):
    """A stopped YOLO run resumes from the checkpoints LabelLoop recorded; an edited one is
    refused as changed."""
    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.runner import start_training
    from src.training.config import load_config

    data = write_yolo_dataset(tmp_path / "data", n_train=8, n_val=2)
    cfg = load_config("configs/detection.yaml", [*TINY[1:], "epochs=2"])
    bus, control = EventBus(), RunControl()
    bus.on("on_train_batch_end",
           lambda _e, p: control.request_stop() if p["epoch"] == 1 else None)
    run = start_training(project, cfg, data.parent, bus=bus, control=control)
    assert run.status == "cancelled"
    weights = project.abspath(run.run_dir) / "weights"
    interrupted = weights / "interrupted.pt"
    original = interrupted.read_bytes()
    interrupted.write_bytes(original + b"\0")
    assert _train(project, "--resume", str(run.id)) == 2
    assert "changed since LabelLoop wrote it" in capsys.readouterr().err
    interrupted.write_bytes(original)
    assert _train(project, "--resume", str(run.id)) == 0
    assert runs_repo.get_run(project.conn, run.id).status == "completed"


def test_a_base_file_dropped_into_models_base_needs_trust_once(project, tmp_path, capsys):
    from src.training import trust
    from src.training.config import load_config
    from src.training.runner import base_weight_inputs

    data = write_yolo_dataset(tmp_path / "data", n_train=2, n_val=1)
    marker = tmp_path / "pwned"
    base = evil_pickle(project.base_weights_dir / "yolov8n.pt", marker)
    assert _train(project, "configs/detection.yaml", "--dataset", str(data.parent), *TINY) == 2
    assert "--trust" in capsys.readouterr().err and not marker.exists()
    assert runs_repo.list_runs(project.conn) == []
    cfg = load_config("configs/detection.yaml", list(TINY))
    assert base_weight_inputs(project, cfg) == [base]
    trust.trust_paths(project.conn, base_weight_inputs(project, cfg))   # what --trust does
    trust.check_training_inputs(project.conn, base_weight_inputs(project, cfg))
    assert not marker.exists()          # trusting reads bytes, never unpickles
