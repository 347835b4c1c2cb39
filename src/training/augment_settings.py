"""Training-time augmentation per model type, from the `training:` section of configs/augment.yaml.

`timm` holds arguments of `timm.data.create_transform(is_training=True)`; `yolo` holds
ultralytics augmentation arguments (checked by ultralytics). Unknown names are a ConfigError
naming the file and the key, so a typo never silently turns augmentation off.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml

from src.errors import ConfigError

CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "augment.yaml"
SECTION = "training"
# create_transform arguments a trainer decides itself (size, normalisation, mode)
_TIMM_OWN = {"input_size", "is_training", "mean", "std", "interpolation", "crop_pct",
             "crop_mode", "use_prefetcher", "normalize", "separate", "naflex", "patchify",
             "tf_preprocessing", "no_aug"}


def training_augment(model_type: str, path: str | Path = CONFIG_PATH) -> dict[str, Any]:
    """The augmentation arguments of `model_type` ('timm' | 'yolo'); {} when not configured."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read augmentation config ({exc.strerror})", path=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"augmentation config is not valid YAML ({exc})", path=path) from exc
    section = (data.get(SECTION) or {}).get(model_type) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"'{SECTION}.{model_type}' must map argument names to values",
                          path=path)
    check = _check_timm if model_type == "timm" else _check_yolo
    check(section, path)
    return dict(section)


def _check_timm(section: dict, path: Path) -> None:
    from timm.data import create_transform

    allowed = set(inspect.signature(create_transform).parameters) - _TIMM_OWN
    for key in section:
        if key not in allowed:
            raise ConfigError(f"'{SECTION}.timm.{key}' is not a timm.data.create_transform "
                              f"argument the trainer leaves to this file", path=path,
                              hint=f"use one of {', '.join(sorted(allowed))}")


def _check_yolo(section: dict, path: Path) -> None:
    from src.training.yolo_args import check_yolo_args

    problems: list[str] = []
    check_yolo_args(section, problems)
    if problems:
        raise ConfigError(f"'{SECTION}.yolo': {'; '.join(problems)}", path=path)
