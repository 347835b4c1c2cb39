"""Every `yolo train` argument, checked by ultralytics' own configuration code.

A YOLO config takes any ultralytics argument (`momentum`, `lrf`, `cos_lr`, `mosaic`, ...) in
its `yolo:` section or as a bare `key=value` override. Unknown names get ultralytics' own
suggestions (`check_dict_alignment`), values its own type and range checks (`check_cfg`).
Names LabelLoop sets itself are refused with the reason, so no setting has two names.
ultralytics is imported only when a YOLO config is checked.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any

# ultralytics arguments that LabelLoop's own top-level keys already are (same name)
SHARED = ("task", "model", "name", "epochs", "batch", "imgsz", "optimizer", "weight_decay",
          "patience", "seed", "device", "workers", "warmup_epochs")

# ultralytics arguments LabelLoop decides itself, with the reason a user reads
RESERVED = {
    "lr0": "the initial learning rate is 'lr' here (one name for YOLO and timm)",
    "data": "the dataset comes from --dataset NAME[:vN]",
    "mode": "this command always trains",
    "project": "the run folder is runs/<id>-<name> of the project",
    "save_dir": "the run folder is runs/<id>-<name> of the project",
    "exist_ok": "the run folder is runs/<id>-<name> of the project",
    "resume": "resume a run with `train --resume RUN_ID`",
    "pretrained": "the base model comes from 'weights' (or models/base/)",
    "cfg": "this YAML file is the config",
}


def default_args() -> dict[str, Any]:
    """ultralytics' default training arguments (its default.yaml)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return dict(DEFAULT_CFG_DICT)


def is_yolo_arg(key: str) -> bool:
    """True for an ultralytics argument that belongs in the `yolo:` section."""
    return key in default_args() and key not in SHARED and key not in RESERVED


def check_yolo_args(args: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The `yolo:` section with ultralytics' type conversions; one problem line per bad key."""
    checked: dict[str, Any] = {}
    for key, value in args.items():
        problem = _refusal(key) or _unknown(key, value)
        if problem is None:
            problem, value = _check_value(key, value)
        if problem:
            problems.append(problem)
        else:
            checked[key] = value
    return checked


def unknown_key_hint(key: str, value: Any) -> str | None:
    """ultralytics' own sentence (with its suggestions) for a name it does not know."""
    return _unknown(key, value)


# -- internals ---------------------------------------------------------------------------

def _refusal(key: str) -> str | None:
    if key in SHARED:
        return f"'yolo.{key}': set '{key}' at the top level of the config (one name for " \
               f"YOLO and timm)"
    if key in RESERVED:
        return f"'{key}' cannot be set: {RESERVED[key]}"
    return None


def _unknown(key: str, value: Any) -> str | None:
    from ultralytics.cfg import check_dict_alignment

    base = {k: v for k, v in default_args().items() if k not in RESERVED}
    try:
        with _quiet_ultralytics():
            check_dict_alignment(base, {key: value}, allowed_custom_keys=set())
    except SyntaxError as exc:
        return " ".join(str(exc).split())
    return None


def _check_value(key: str, value: Any) -> tuple[str | None, Any]:
    from ultralytics.cfg import check_cfg

    one = {key: value}
    try:
        check_cfg(one, hard=True)
    except (TypeError, ValueError) as exc:
        return f"yolo.{key}: {exc}", value
    return None, one[key]


@contextmanager
def _quiet_ultralytics():
    """check_dict_alignment logs ultralytics' whole CLI help before raising; we print one line."""
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
