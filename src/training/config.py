"""Training configuration: dataclasses with help text, YAML templates, `key=value` overrides.

`load_config(path, overrides)` reads a template from configs/, applies overrides such as
`epochs=5 lora.rank=4 lora.enabled=true`, and validates everything at once: every problem
found becomes one line of a single ConfigError, so a user fixes a config in one pass.
A YOLO config also takes every ultralytics `yolo train` argument, in its `yolo:` section or
as a bare override (`cos_lr=true lrf=0.1`), checked by ultralytics itself (yolo_args.py).
"""
from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from src.atomic_files import write_text_atomic
from src.data.datasets.naming import is_reserved
from src.errors import ConfigError

MODEL_TYPES = ("yolo", "timm")
TASKS = ("detect", "segment", "classify")
OPTIMIZERS = ("auto", "sgd", "adam", "adamw", "nadam", "radam", "rmsprop")
WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")
LORA_LAYERS = ("all", "head", "neck+head")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|\d+(,\d+)*)$")


def _help(text: str, default: Any = MISSING, factory: Any = MISSING):
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"help": text})
    if default is MISSING:
        return field(metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class LoraSettings:
    enabled: bool = _help("train low-rank adapters instead of every weight", False)
    rank: int = _help("adapter rank r (size of the low-rank update)", 8)
    alpha: float = _help("adapter scale numerator: the update is scaled by alpha / rank", 16.0)
    dropout: float = _help("dropout on the adapter input, in [0, 1)", 0.0)
    layers: str = _help("where adapters go: 'all' | 'head' | 'neck+head' | 'regex:<pattern>'",
                        "all")
    train_head: bool = _help("keep the classification/detection head fully trainable", True)


@dataclass
class ImbalanceSettings:
    class_weights: bool = _help("weight the loss by inverse training-split class frequency",
                                False)
    focal_loss: bool = _help("use focal loss (down-weights easy examples)", False)
    focal_gamma: float = _help("focal loss focusing parameter gamma (>= 0)", 2.0)
    focal_alpha: float | None = _help("focal loss weight of the positive term, in [0, 1], or "
                                      "null", None)
    balanced_sampler: bool = _help("draw training batches with equal expected class counts",
                                   False)
    repeat_factor_threshold: float = _help(
        "YOLO: repeat images holding a class found in fewer than this fraction of training "
        "images, by sqrt(threshold / fraction) per epoch (LVIS repeat-factor sampling); "
        "0 = off, typical 0.1-1.0", 0.0)


@dataclass
class TrainConfig:
    name: str = _help("run and model name, e.g. 'detector'")
    model_type: str = _help("'yolo' (ultralytics) or 'timm' (image classifiers)")
    task: str = _help("'detect' | 'segment' | 'classify'")
    model: str = _help("yolo base name ('yolov8n'; '-seg'/'-cls' follow the task) or a timm "
                       "model name ('resnet18')")
    weights: str | None = _help("base weights file (.pt/.pth/.safetensors) or 'model:<version "
                                "id>'; null = models/base/ or from scratch", None)
    epochs: int = _help("number of training epochs", 50)
    batch: int = _help("batch size (per device)", 16)
    imgsz: int = _help("input image size in pixels", 640)
    lr: float = _help("initial learning rate", 0.001)
    optimizer: str = _help("'auto' | 'sgd' | 'adam' | 'adamw' | 'nadam' | 'radam' | 'rmsprop'",
                           "auto")
    weight_decay: float = _help("weight decay (L2) of the optimizer", 0.0005)
    warmup_epochs: float = _help("epochs of linear learning-rate warm-up (0 = none)", 3.0)
    patience: int = _help("stop after this many epochs without improvement (0 = never)", 20)
    seed: int = _help("random seed for weights init, shuffling and augmentation", 0)
    device: str = _help("'auto' | 'cpu' | 'cuda' | 'cuda:0' | '0,1' | 'mps'", "auto")
    workers: int = _help("data-loading worker processes (reduced to what the machine has)", 2)
    lora: LoraSettings = _help("LoRA adapter settings", factory=LoraSettings)
    imbalance: ImbalanceSettings = _help("class-imbalance handling (classifiers)",
                                         factory=ImbalanceSettings)
    tensorboard: bool = _help("write TensorBoard logs under the run folder", True)
    log_images_every: int = _help("log the confusion matrix and a prediction grid every N "
                                  "epochs (0 = only at the end)", 5)
    yolo: dict[str, Any] = _help("any other ultralytics `yolo train` argument (momentum, lrf, "
                                 "cos_lr, mosaic, hsv_h, ...), checked by ultralytics; YOLO "
                                 "configs only", factory=dict)


def valid_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key a config or an override may set."""
    keys = []
    for f in fields(cls):
        sub = _nested_type(cls, f.name)
        if sub is not None:
            keys.extend(valid_keys(sub, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def help_text(key: str) -> str:
    """The help of a dotted key, for --help listings and GUI tooltips."""
    cls: type = TrainConfig
    *parents, last = key.split(".")
    for part in parents:
        cls = _nested_type(cls, part)
    return next(f.metadata["help"] for f in fields(cls) if f.name == last)


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML template, apply `key=value` overrides, validate; one ConfigError for all."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path,
                          hint="pass one of configs/*.yaml or a copy of it") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of keys to values", path=path)
    return config_from_dict(raw, overrides or [], source=path)


def config_from_dict(raw: dict, overrides: list[str] | None = None, *,
                     source: str | Path | None = None) -> TrainConfig:
    """Build and validate a TrainConfig from nested dicts (YAML, a stored run config)."""
    problems: list[str] = []
    flat = _flatten(raw, problems)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"override {item!r} is not key=value (e.g. epochs=5)")
            continue
        flat[key.strip()] = _parse_scalar(value.strip())
    values, yolo = _check_keys(flat, problems)
    base_dir = Path(source).parent if source else None
    cfg = _build(values, problems, base_dir)
    cfg.yolo = _check_yolo_section(cfg, yolo, problems)
    if problems:
        where = f"{source}: " if source else ""
        listing = (problems[0] if len(problems) == 1 else   # one problem: one line
                   f"{len(problems)} problem(s) in the training config:\n  - "
                   + "\n  - ".join(problems))
        raise ConfigError(f"{where}{listing}",
                          hint="fix the config file or the key=value overrides")
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)


def save_config(cfg: TrainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    return write_text_atomic(path, text)


# -- internals ---------------------------------------------------------------------------

_SECTIONS = ("lora", "imbalance", "yolo")

def _nested_type(cls: type, name: str) -> type | None:
    hint = typing.get_type_hints(cls)[name]
    return hint if is_dataclass(hint) else None


def _flatten(raw: dict, problems: list[str], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted in _SECTIONS:
            flat.update(_flatten(value, problems, dotted + "."))
        elif dotted in _SECTIONS and value is not None:
            problems.append(f"'{dotted}' must be a section of key: value lines, got {value!r}")
        elif dotted not in _SECTIONS:
            flat[dotted] = value
    return flat


def _parse_scalar(text: str) -> Any:
    if text.lower() in ("none", "null", "~", ""):
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _check_keys(flat: dict[str, Any],
                problems: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our keys, the ultralytics arguments): `yolo.momentum` and a bare `momentum` alike."""
    known = [k for k in valid_keys() if k != "yolo"]
    values, yolo = {}, {}
    for key, value in flat.items():
        if key in known:
            values[key] = value
        elif key.startswith("yolo."):
            yolo[key[len("yolo."):]] = value
        elif "." not in key and _is_yolo_arg(key):
            yolo[key] = value
        else:
            problems.append(_unknown_key(key, value, known, flat.get("model_type")))
    return values, yolo


def _is_yolo_arg(key: str) -> bool:
    from src.training.yolo_args import is_yolo_arg, RESERVED

    return is_yolo_arg(key) or key in RESERVED


def _unknown_key(key: str, value: Any, known: list[str], model_type: Any) -> str:
    """Our suggestion for our keys; for a YOLO config, also ultralytics' own sentence."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    ours = f"did you mean '{close[0]}'?" if close else ""
    if model_type == "yolo" and "." not in key:
        from src.training.yolo_args import unknown_key_hint

        theirs = unknown_key_hint(key, value)
        if theirs and ("Similar arguments" in theirs or not ours):
            return f"unknown key: {theirs}"
    return f"unknown key '{key}'; {ours}" if ours else f"unknown key '{key}'"


def _check_yolo_section(cfg: TrainConfig, yolo: dict[str, Any],
                        problems: list[str]) -> dict[str, Any]:
    if not yolo:
        return {}
    if cfg.model_type != "yolo":
        problems.append(f"ultralytics arguments ({', '.join(sorted(yolo))}) only apply to "
                        f"model_type yolo; this config is {cfg.model_type!r}")
        return {}
    from src.training.yolo_args import check_yolo_args

    checked = check_yolo_args(yolo, problems)
    if "cls_pw" in checked and cfg.imbalance.class_weights:
        problems.append("'imbalance.class_weights' sets ultralytics' cls_pw=1.0 and "
                        f"'cls_pw' is also set ({checked['cls_pw']}): keep one of them")
    return checked


def _build(values: dict[str, Any], problems: list[str], base_dir: Path | None) -> TrainConfig:
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"lora": {}, "imbalance": {}}
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest:
            nested[head][rest] = value
        else:
            top[key] = value
    kwargs = _coerce(TrainConfig, top, problems, "")
    kwargs["lora"] = LoraSettings(**_coerce(LoraSettings, nested["lora"], problems, "lora."))
    kwargs["imbalance"] = ImbalanceSettings(
        **_coerce(ImbalanceSettings, nested["imbalance"], problems, "imbalance."))
    for f in fields(TrainConfig):
        if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            problems.append(f"'{f.name}' is required ({f.metadata['help']})")
            kwargs[f.name] = None
    cfg = TrainConfig(**kwargs)
    _validate(cfg, problems, base_dir)
    return cfg


def _coerce(cls: type, given: dict[str, Any], problems: list[str], prefix: str) -> dict:
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in given.items():
        if is_dataclass(hints[name]):
            problems.append(f"'{prefix}{name}' must be a section (e.g. {name}.rank=4), "
                            f"not {value!r}")
            continue
        ok, converted = _convert(hints[name], value)
        if ok:
            out[name] = converted
        else:
            problems.append(f"'{prefix}{name}' must be {_type_name(hints[name])}, "
                            f"got {value!r}")
    return out


def _convert(hint: Any, value: Any) -> tuple[bool, Any]:
    args = typing.get_args(hint)
    optional = type(None) in args and (typing.get_origin(hint) in (typing.Union, types.UnionType))
    if value is None:
        return optional, None
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if base is bool:
        return isinstance(value, bool), value
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if base is float:
        if isinstance(value, str):   # YAML 1.1 reads '3e-4' (no dot) as text
            try:
                return True, float(value)
            except ValueError:
                return False, value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if base is str:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        return ok, str(value) if ok else value
    return False, value


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    name = {bool: "true or false", int: "an integer", float: "a number", str: "text"}[base]
    return f"{name} or null" if args else name


def _validate(cfg: TrainConfig, problems: list[str], base_dir: Path | None) -> None:
    def need(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    if cfg.model_type is not None:
        need(cfg.model_type in MODEL_TYPES,
             f"'model_type' must be one of {', '.join(MODEL_TYPES)}, got {cfg.model_type!r}")
    if cfg.task is not None:
        need(cfg.task in TASKS, f"'task' must be one of {', '.join(TASKS)}, got {cfg.task!r}")
        if cfg.model_type == "timm":
            need(cfg.task == "classify",
                 f"timm models only classify; 'task' must be 'classify', got {cfg.task!r}")
    if cfg.name is not None:
        need(bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", cfg.name))
             and not cfg.name.endswith(".") and not is_reserved(cfg.name),
             f"'name' must be 1-64 letters, digits, '_', '-' or '.', not end with '.' and not "
             f"be a name Windows reserves (CON, NUL, COM1...), got {cfg.name!r}")
    if cfg.model is not None:
        need(bool(cfg.model.strip()), "'model' must not be empty")
    for key in ("epochs", "batch"):
        need(getattr(cfg, key) >= 1, f"'{key}' must be a positive integer, got "
                                     f"{getattr(cfg, key)}")
    need(16 <= cfg.imgsz <= 8192, f"'imgsz' must be between 16 and 8192 pixels, got {cfg.imgsz}")
    need(cfg.lr > 0, f"'lr' must be > 0, got {cfg.lr}")
    need(cfg.weight_decay >= 0, f"'weight_decay' must be >= 0, got {cfg.weight_decay}")
    need(cfg.optimizer.lower() in OPTIMIZERS,
         f"'optimizer' must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    cfg.optimizer = cfg.optimizer.lower()
    need(cfg.patience >= 0, f"'patience' must be >= 0, got {cfg.patience}")
    need(cfg.seed >= 0, f"'seed' must be >= 0, got {cfg.seed}")
    need(cfg.workers >= 0, f"'workers' must be >= 0, got {cfg.workers}")
    need(cfg.log_images_every >= 0,
         f"'log_images_every' must be >= 0, got {cfg.log_images_every}")
    need(bool(_DEVICE_RE.match(cfg.device)),
         f"'device' must be auto, cpu, mps, cuda, cuda:N or GPU indices like 0,1; "
         f"got {cfg.device!r}")
    _validate_lora(cfg.lora, need)
    _validate_imbalance(cfg.imbalance, need)
    if cfg.weights is not None:
        cfg.weights = _check_weights(cfg.weights, problems, base_dir)


def _validate_lora(lora: LoraSettings, need) -> None:
    need(lora.rank >= 1, f"'lora.rank' must be a positive integer, got {lora.rank}")
    need(lora.alpha > 0, f"'lora.alpha' must be > 0, got {lora.alpha}")
    need(0 <= lora.dropout < 1, f"'lora.dropout' must be in [0, 1), got {lora.dropout}")
    if lora.layers.startswith("regex:"):
        try:
            re.compile(lora.layers[len("regex:"):])
        except re.error as exc:
            need(False, f"'lora.layers' has an invalid regex ({exc})")
    else:
        need(lora.layers in LORA_LAYERS,
             f"'lora.layers' must be one of {', '.join(LORA_LAYERS)} or 'regex:<pattern>', "
             f"got {lora.layers!r}")


def _validate_imbalance(imb: ImbalanceSettings, need) -> None:
    need(imb.focal_gamma >= 0, f"'imbalance.focal_gamma' must be >= 0, got {imb.focal_gamma}")
    need(0 <= imb.repeat_factor_threshold <= 1,
         f"'imbalance.repeat_factor_threshold' must be in [0, 1] (0 = off), got "
         f"{imb.repeat_factor_threshold}")
    if imb.focal_alpha is not None:
        need(0 <= imb.focal_alpha <= 1,
             f"'imbalance.focal_alpha' must be in [0, 1] or null, got {imb.focal_alpha}")


def _check_weights(weights: str, problems: list[str], base_dir: Path | None) -> str:
    if weights.startswith("model:"):
        if not weights[len("model:"):].isdigit():
            problems.append(f"'weights' {weights!r}: a registered model is 'model:<version id>'"
                            f" with a number, e.g. model:3")
        return weights
    path = Path(weights).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if base_dir is not None and not path.is_absolute():
        candidates.append(base_dir / path)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        problems.append(f"'weights' file not found: {weights} (looked in "
                        f"{', '.join(str(c.parent) for c in candidates)})")
        return weights
    if found.suffix.lower() not in WEIGHT_SUFFIXES:
        problems.append(f"'weights' must be a {'/'.join(WEIGHT_SUFFIXES)} file, got {found.name}")
    return str(found.resolve())
