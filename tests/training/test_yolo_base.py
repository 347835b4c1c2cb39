"""Base model resolution for YOLO and the errors a user sees before any training starts."""
from __future__ import annotations

import pytest
import torch

from src.db.model_versions import add_model_version
from src.db.records import ModelVersion
from src.errors import ConfigError, TrainingError
from src.training import base_model
from src.training.base_model import resolve_yolo_base, yolo_model_name
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.yolo_trainer import resumable_checkpoint, train_yolo, ultralytics_device
from tests.training.yolo_fixtures import write_yolo_dataset, yolo_config


@pytest.mark.parametrize("model, task, expected", [
    ("yolov8n", "detect", "yolov8n"), ("yolov8n", "segment", "yolov8n-seg"),
    ("yolov8n.pt", "classify", "yolov8n-cls"), ("yolo11s-seg", "detect", "yolo11s"),
    ("yolov8n-cls.yaml", "segment", "yolov8n-seg")])
def test_model_name_follows_the_task(model, task, expected):
    assert yolo_model_name(model, task) == expected


def test_offline_without_local_weights_builds_from_yaml_with_a_message(tmp_path):
    source, message = resolve_yolo_base(yolo_config("segment"), tmp_path / "base")
    assert source == "yolov8n-seg.yaml"
    assert message == (f"base: built from yolov8n-seg.yaml (from scratch): no "
                       f"{tmp_path / 'base' / 'yolov8n-seg.pt'} and offline (YOLO_OFFLINE is set)")


def test_local_base_weights_are_preferred(tmp_path):
    (tmp_path / "yolov8n.pt").write_bytes(b"weights")
    source, message = resolve_yolo_base(yolo_config("detect"), tmp_path)
    assert source == str(tmp_path / "yolov8n.pt") and "local pretrained" in message


def test_failed_download_becomes_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("YOLO_OFFLINE")

    def no_network(target):
        raise ConnectionError(f"download failure for {target.name}")
    monkeypatch.setattr(base_model, "_download", no_network)
    source, message = resolve_yolo_base(yolo_config("detect"), tmp_path)
    assert source == "yolov8n.yaml"
    assert "download failed (ConnectionError: download failure for yolov8n.pt)" in message


def test_explicit_weights_that_do_not_exist_name_the_file(tmp_path):
    missing = tmp_path / "mine.pt"
    with pytest.raises(ConfigError) as err:
        resolve_yolo_base(yolo_config("detect", weights=str(missing)), tmp_path)
    assert str(missing) in str(err.value) and err.value.field == "weights"


def test_train_yolo_rejects_missing_weights_before_training(tmp_path):
    data = write_yolo_dataset(tmp_path / "ds", n_train=2, n_val=2)
    cfg = yolo_config("detect", weights=str(tmp_path / "gone.pt"))
    with pytest.raises(ConfigError, match="gone.pt"):
        train_yolo(cfg, data, tmp_path / "run", EventBus(), RunControl(), base_dir=tmp_path)
    assert not (tmp_path / "run" / "weights").exists()


def test_unknown_architecture_is_a_config_error(tmp_path):
    cfg = yolo_config("detect")
    cfg.model = "yolov99z"
    with pytest.raises(ConfigError, match="unknown YOLO model 'yolov99z'"):
        resolve_yolo_base(cfg, tmp_path)


def test_registered_model_version_resolves_to_its_file(project):
    folder = project.root / "models" / "detector" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"x")
    mv = add_model_version(project.conn, ModelVersion(task="detect", name="detector", version=0,
                                                      path=project.relpath(folder)))
    source, message = resolve_yolo_base(yolo_config("detect", weights=f"model:{mv.id}"),
                                        project.root, project)
    assert source == str(folder / "model.pt") and "detector v1" in message
    with pytest.raises(ConfigError, match="no registered model version 999"):
        resolve_yolo_base(yolo_config("detect", weights="model:999"), project.root, project)


def test_missing_dataset_is_a_dataset_error(tmp_path):
    from src.errors import DatasetError

    with pytest.raises(DatasetError, match="data.yaml"):
        train_yolo(yolo_config("detect"), tmp_path, tmp_path / "run", EventBus(), RunControl())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_training_error():
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        ultralytics_device("cuda")
    assert ultralytics_device("auto") in ("cpu", "mps")


def test_resume_without_a_checkpoint_says_so(tmp_path):
    data = write_yolo_dataset(tmp_path / "ds", n_train=2, n_val=2)
    assert resumable_checkpoint(tmp_path / "run") is None
    with pytest.raises(TrainingError, match="nothing to resume"):
        train_yolo(yolo_config("detect"), data, tmp_path / "run", EventBus(), RunControl(),
                   resume=True)


def test_run_notes_say_what_yolo_does_with_imbalance_and_auto_optimizer():
    from dataclasses import replace

    from src.training.yolo_trainer import imbalance_notes

    cfg = yolo_config("classify", class_weights=True)
    cfg = replace(cfg, optimizer="auto",
                  imbalance=replace(cfg.imbalance, focal_loss=True, balanced_sampler=True))
    notes = " | ".join(imbalance_notes(cfg))
    assert "lr is ignored" in notes
    assert "class weights: not supported by ultralytics classification" in notes
    assert "focal loss: not supported" in notes and "balanced sampler: not supported" in notes
    assert imbalance_notes(yolo_config("detect")) == []
    assert "cls_pw=1.0" in imbalance_notes(yolo_config("segment", class_weights=True))[0]


def test_broken_images_still_raise_pillows_error_after_ultralytics_patched_it(tmp_path):
    """ultralytics replaces PIL.Image.open process-wide; with pi-heif installed a broken file
    is still an UnidentifiedImageError (not ModuleNotFoundError) for the rest of the app."""
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)
    from PIL import Image, UnidentifiedImageError

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)
