"""Which base model a training starts from (YOLO or timm), and a sentence saying so.

The one place for base-weight lookup. YOLO: the config's explicit `weights` (a file, or
'model:<id>' of a registered model) → models/base/<model><suffix>.pt → an ultralytics
download when online → the architecture yaml, built from scratch. timm: `weights` (a file
or 'model:<id>') → models/base/<model>.safetensors/.pth/.pt/.bin → random initialisation.
No pretrained weights ever appear silently or fail as a traceback.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from src.errors import ConfigError

TASK_SUFFIX = {"detect": "", "segment": "-seg", "classify": "-cls"}


def yolo_model_name(model: str, task: str) -> str:
    """'yolov8n' / 'yolov8n.pt' / 'yolov8n-seg' → the task's name, e.g. 'yolov8n-cls'."""
    if task not in TASK_SUFFIX:
        raise ConfigError(f"YOLO has no task {task!r}", field="task",
                          hint=f"use one of {', '.join(TASK_SUFFIX)}")
    stem = re.sub(r"\.(pt|yaml|yml)$", "", Path(model).name)
    stem = re.sub(r"-(seg|cls)$", "", stem)
    return stem + TASK_SUFFIX[task]


TIMM_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
YOLO_MODEL_FILE = "model.pt"
TIMM_MODEL_FILE = "model.safetensors"


def resolve_base(cfg, base_dir: Path | None, project=None) -> tuple[str | None, str]:
    """(weights or architecture to start from — None: timm random init —, a message)."""
    if cfg.model_type == "timm":
        return resolve_timm_base(cfg, base_dir, project)
    return resolve_yolo_base(cfg, base_dir, project)


def resolve_timm_base(cfg, base_dir: Path | None, project=None) -> tuple[str | None, str]:
    """(weights file or None, message): cfg.weights (file or 'model:<id>') → base_dir/<model>.*
    → random initialisation."""
    if cfg.weights and cfg.weights.startswith("model:"):
        return _registered_model(cfg.weights, project, TIMM_MODEL_FILE)
    if cfg.weights:
        return cfg.weights, f"base: weights from {cfg.weights}"
    if base_dir is not None:
        for suffix in TIMM_SUFFIXES:
            candidate = Path(base_dir) / f"{cfg.model}{suffix}"
            if candidate.is_file():
                return str(candidate), f"base: {candidate} (models/base)"
    where = f" in {base_dir}" if base_dir is not None else ""
    return None, (f"base: {cfg.model} randomly initialised (from scratch): no weights given and "
                  f"no {cfg.model}.safetensors/.pth{where}")


def resolve_yolo_base(cfg, base_dir: Path, project=None) -> tuple[str, str]:
    """(what to pass to ultralytics.YOLO, a message saying which base was used and why)."""
    name = yolo_model_name(cfg.model, cfg.task)
    if cfg.weights:
        return _explicit_weights(cfg.weights, project)
    local = Path(base_dir) / f"{name}.pt"
    if local.is_file():
        return str(local), f"base: {local} (local pretrained weights)"
    reason = f"no {local}"
    if not _offline():
        try:
            return _download(local), f"base: {local} (downloaded by ultralytics)"
        except (ConnectionError, OSError) as exc:
            reason += f" and the download failed ({type(exc).__name__}: {exc})"
    else:
        reason += " and offline (YOLO_OFFLINE is set)"
    yaml_name = _check_architecture(name)
    return yaml_name, f"base: built from {yaml_name} (from scratch): {reason}"


def local_base_file(cfg, base_dir: Path) -> Path | None:
    """models/base/<model><suffix>.pt when a YOLO run without explicit weights would load it."""
    if cfg.model_type != "yolo" or cfg.weights:
        return None
    path = Path(base_dir) / f"{yolo_model_name(cfg.model, cfg.task)}.pt"
    return path if path.is_file() else None


def _explicit_weights(weights: str, project) -> tuple[str, str]:
    if weights.startswith("model:"):
        return _registered_model(weights, project, YOLO_MODEL_FILE)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"base weights file not found: {path}", field="weights", path=path,
                          hint="fix the path, or set weights: null to use models/base/ or "
                               "train from scratch")
    if path.suffix.lower() != ".pt":
        raise ConfigError(f"YOLO base weights must be an ultralytics .pt file, got {path.name}",
                          field="weights", path=path)
    return str(path.resolve()), f"base: {path} (weights from the config)"


def _registered_model(weights: str, project, model_file: str) -> tuple[str, str]:
    """The file of registered model version 'model:<id>' (`model_file` inside its folder)."""
    from src.db.model_versions import get_model_version

    ident = weights[len("model:"):]
    if project is None or not ident.isdigit():
        raise ConfigError(f"cannot resolve {weights!r} here", field="weights",
                          hint="a registered model is 'model:<version id>' inside a project")
    version = get_model_version(project.conn, int(ident))
    if version is None:
        raise ConfigError(f"no registered model version {ident}", field="weights",
                          hint="list them with `models list` and use one of their ids")
    path = project.abspath(version.path)
    if path.is_dir():
        path = path / model_file
    if not path.is_file():
        raise ConfigError(f"model version {ident} ({version.name} v{version.version}) has no "
                          f"file at {path}", field="weights", path=path,
                          hint="the model folder was moved or deleted; pick another version")
    if path.suffix != Path(model_file).suffix:
        raise ConfigError(f"model version {ident} ({version.task}/{version.name} "
                          f"v{version.version}) is a {path.suffix} model, not a "
                          f"{Path(model_file).suffix} one", field="weights", path=path,
                          hint="pick a model version trained with the same model type")
    return str(path), (f"base: registered model {version.name} v{version.version} "
                       f"({weights}, {path})")


def _offline() -> bool:
    return os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes")


def _download(target: Path) -> str:
    """Let ultralytics fetch an official checkpoint into models/base/."""
    from ultralytics.utils.downloads import attempt_download_asset

    target.parent.mkdir(parents=True, exist_ok=True)
    path = Path(attempt_download_asset(target))
    if not path.is_file():
        raise ConnectionError(f"ultralytics has no downloadable {target.name}")
    from src.training.trust import record_if_gated
    record_if_gated(path, "download")   # fetched by LabelLoop itself: trusted in the project
    return str(path)


def _check_architecture(name: str) -> str:
    """The architecture yaml ultralytics builds `name` from; ConfigError for unknown names."""
    from ultralytics.nn.tasks import yaml_model_load

    yaml_name = f"{name}.yaml"
    try:
        yaml_model_load(yaml_name)
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(f"unknown YOLO model {name!r}: no architecture {yaml_name}",
                          field="model",
                          hint="use an ultralytics name such as yolov8n or yolo11n") from exc
    return yaml_name
