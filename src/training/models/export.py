"""Exporting a version: ONNX (ultralytics' exporter for YOLO, torch.onnx for timm), the other
ultralytics formats whose packages are installed, or a bundle (see bundle.py)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from src.atomic_files import copy_atomic
from src.db.records import ModelVersion
from src.errors import ModelError
from src.training import trust
from src.training.models.bundle import export_bundle
from src.training.models.manager import SAM_ADAPTER_TASK, ModelManager

# ultralytics export formats and the suffix (or folder suffix) each writes
YOLO_FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript", "openvino": "_openvino_model",
                "engine": ".engine", "coreml": ".mlpackage", "saved_model": "_saved_model",
                "tflite": ".tflite", "ncnn": "_ncnn_model", "mnn": ".mnn", "paddle":
                "_paddle_model"}


def export_version(manager: ModelManager, version: ModelVersion, fmt: str,
                   out: Path | None = None, imgsz: int | None = None) -> Path:
    """Write the exported model to `out` (default: beside nothing of ours, in the current
    folder, named after the version) and return its path."""
    fmt = fmt.lower()
    if fmt == "bundle":
        return export_bundle(manager, version, Path(out or f"{version.display_name}.zip"))
    if version.task == SAM_ADAPTER_TASK:
        raise ModelError(f"a SAM adapter exports as a bundle only, not {fmt!r}",
                         field="--format", hint="use --format bundle")
    if version.model_type == "timm":
        if fmt != "onnx":
            raise ModelError(f"a timm classifier exports to onnx or bundle, not {fmt!r}",
                             field="--format")
        return export_timm_onnx(manager, version, Path(out or f"{version.display_name}.onnx"),
                                imgsz)
    if fmt not in YOLO_FORMATS:
        raise ModelError(f"unknown export format {fmt!r}", field="--format",
                         hint=f"use bundle or one of {', '.join(YOLO_FORMATS)}")
    target = Path(out or f"{version.display_name}{YOLO_FORMATS[fmt]}")
    return export_yolo(manager, version, fmt, target, imgsz)


def train_imgsz(manager: ModelManager, version: ModelVersion, default: int = 640) -> int:
    """The image size the version was trained at (its metadata.json / model_config.json)."""
    for role in ("metadata", "model_config"):
        f = next((f for f in version.files if f.role == role), None)
        if f is None:
            continue
        data = json.loads(manager.path_of(f).read_text())
        size = (data.get("config") or {}).get("imgsz") or data.get("imgsz")
        if isinstance(size, int) and size > 0:
            return size
    return default


def export_yolo(manager: ModelManager, version: ModelVersion, fmt: str, target: Path,
                imgsz: int | None) -> Path:
    """ultralytics' exporter, run on a verified copy in a temp folder (it writes beside the
    weights file, which must stay as registered)."""
    from ultralytics import YOLO

    weights = manager.weights_path(version)
    size = imgsz or train_imgsz(manager, version)
    with tempfile.TemporaryDirectory(prefix="labelloop-export-") as tmp:
        copy = Path(tmp) / "model.pt"
        shutil.copyfile(weights, copy)
        with trust.gate(manager.conn):
            trust.check_before_unpickle(copy)
            model = YOLO(str(copy), task=_yolo_task(version))
        try:
            produced = Path(model.export(format=fmt, imgsz=size, device="cpu"))
        except (ModuleNotFoundError, ImportError) as exc:
            raise ModelError(f"exporting to {fmt} needs a package that is not installed "
                             f"({exc})", field="--format",
                             hint="install it, or export to onnx") from None
        return _move(produced, target)


def _yolo_task(version: ModelVersion) -> str:
    return "classify" if version.task == "crop_classifier" else version.task


def _move(produced: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if produced.is_dir():
        if target.exists():
            raise ModelError("the export target exists", path=target, hint="remove it first")
        shutil.move(str(produced), target)
        return target
    return copy_atomic(produced, target)


def export_timm_onnx(manager: ModelManager, version: ModelVersion, target: Path,
                     imgsz: int | None) -> Path:
    """torch.onnx (TorchScript exporter) of the merged classifier; input 'images'
    (N, 3, H, W) normalised as in training, output 'logits'."""
    import torch

    from src.training.models.timm_model import load_timm_classifier

    model, config = load_timm_classifier(manager, version)
    size = imgsz or int(config.get("imgsz") or 224)
    dummy = torch.zeros(1, 3, size, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".onnx-") as tmp:
        out = Path(tmp) / "model.onnx"
        torch.onnx.export(model, dummy, str(out), input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"},
                                                                 "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        return _move(out, target)
