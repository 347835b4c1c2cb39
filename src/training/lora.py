"""LoRA adapters on convolutions and linear layers, with PEFT, for YOLO and timm models.

Adapters are injected in place (`inject_adapter_in_model`), not through the `PeftModel`
wrapper: ultralytics' EMA and checkpoints expect the bare model and its state-dict names.
An adapter file holds the LoRA tensors (`get_peft_model_state_dict`) plus, when the head is
trained in full, the head's tensors, so base + adapter file reproduce the trained model.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn

from src.errors import ConfigError

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_EXTRA_PREFIX = "trainable."   # full (non-LoRA) tensors saved next to the adapters


def lora_targets(model: nn.Module, layers: str, head_prefixes: tuple[str, ...] = (), *,
                 neck_prefixes: tuple[str, ...] | None = None) -> list[str]:
    """Names of the modules to adapt: dense convs (groups 1, no dilation, not '.dfl') and linears.

    layers: 'all' | 'head' (modules under `head_prefixes`) | 'neck+head' (also under
    `neck_prefixes`; for a YOLO model they default to the layers after its backbone) |
    'regex:<pattern>' (the pattern must match a whole module name).
    """
    eligible = [name for name, module in model.named_modules() if _adaptable(name, module)]
    if layers == "all":
        chosen = eligible
    elif layers == "head":
        chosen = [n for n in eligible if _inside(n, _need_prefixes(head_prefixes, layers))]
    elif layers == "neck+head":
        necks = neck_prefixes if neck_prefixes is not None else yolo_neck_prefixes(model)
        chosen = [n for n in eligible
                  if _inside(n, _need_prefixes((*necks, *head_prefixes), layers))]
    elif layers.startswith("regex:"):
        pattern = re.compile(layers[len("regex:"):])
        chosen = [n for n in eligible if pattern.fullmatch(n)]
    else:
        raise ConfigError(f"unknown adapter placement {layers!r}", field="lora.layers",
                          hint="use all, head, neck+head or regex:<pattern>")
    if not chosen:
        raise ConfigError(f"lora.layers={layers!r} selects no convolution or linear layer of "
                          f"{type(model).__name__}", field="lora.layers",
                          hint=f"eligible names look like {', '.join(eligible[:3])}")
    return chosen


def adapter_targets(model: nn.Module, settings, head_prefixes: tuple[str, ...]) -> list[str]:
    """The modules both trainers adapt for `settings` (LoraSettings): `lora_targets` of
    settings.layers, less the head when it trains in full (adapters there would only
    duplicate it), unless the head is all that was selected."""
    targets = lora_targets(model, settings.layers, head_prefixes)
    if settings.train_head:
        targets = [t for t in targets if not _inside(t, head_prefixes)] or targets
    return targets


def yolo_head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The last layer of a YOLO model (Detect / Segment / Classify) is its head."""
    return (f"model.{len(model.model) - 1}.",)


def yolo_neck_prefixes(model: nn.Module) -> tuple[str, ...]:
    """YOLO layers after the backbone section of the model yaml, except the head."""
    spec = getattr(model, "yaml", None)
    if not isinstance(spec, dict) or "backbone" not in spec or not hasattr(model, "model"):
        raise ConfigError("this model has no YOLO backbone/neck layout", field="lora.layers",
                          hint="use lora.layers=all, head or regex:<pattern>")
    return tuple(f"model.{i}." for i in range(len(spec["backbone"]), len(model.model) - 1))


def inject_lora(model: nn.Module, settings, targets: list[str]) -> nn.Module:
    """Wrap each target module with a LoRA layer, in place; B starts at 0 so outputs are unchanged."""
    return inject_adapter_in_model(_peft_config(settings, targets), model)


def freeze_base(model: nn.Module, trainable_prefixes: tuple[str, ...] = ()) -> None:
    """Only LoRA tensors and tensors under `trainable_prefixes` (e.g. the head) get gradients."""
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or _under(name, trainable_prefixes)


def frozen_modules_eval(model: nn.Module) -> None:
    """Put normalisation layers whose parameters are all frozen in eval mode.

    Their running statistics then stay those of the base, so the base stays shareable and an
    adapter file alone describes the change.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._NormBase):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def param_counts(model: nn.Module) -> dict:
    """Trainable and total parameter counts and the trainable share."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "share": trainable / total if total else 0.0}


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoraLayer) for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base layer and put the base layer back: a plain torch model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    return model


def save_adapters(model: nn.Module, out_dir: Path, settings, targets: list[str],
                  trainable_prefixes: tuple[str, ...] = (), extra: dict | None = None) -> Path:
    """Write adapter_model.safetensors + adapter_config.json into `out_dir`, atomically.

    The folder is built next to `out_dir` and renamed over it, so a reader never sees half of it.
    """
    out_dir = Path(out_dir)
    tensors = {k: v.detach().float().contiguous().cpu()
               for k, v in get_peft_model_state_dict(model).items()}
    for name, value in model.state_dict().items():
        if _under(name, trainable_prefixes) and "lora_" not in name and value.is_floating_point():
            tensors[_EXTRA_PREFIX + name] = value.detach().float().contiguous().cpu()
    config = {"peft": _peft_config(settings, targets).to_dict(), "targets": list(targets),
              "trainable_prefixes": list(trainable_prefixes), "extra": extra or {}}
    config["peft"] = json.loads(json.dumps(config["peft"], default=_jsonable))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    save_file(tensors, str(tmp / ADAPTER_WEIGHTS))
    (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    _replace_dir(tmp, out_dir)
    return out_dir


def load_adapters(model: nn.Module, adapter_dir: Path) -> nn.Module:
    """Inject the adapters described in `adapter_dir` into a base model and load their tensors."""
    adapter_dir = Path(adapter_dir)
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    except FileNotFoundError as exc:
        raise ConfigError("not an adapter folder (adapter_config.json + "
                          "adapter_model.safetensors expected)", path=adapter_dir) from exc
    peft = config["peft"]
    settings = _Settings(rank=peft["r"], alpha=peft["lora_alpha"], dropout=peft["lora_dropout"])
    if not has_lora(model):
        inject_lora(model, settings, config["targets"])
    lora_part = {k: v for k, v in tensors.items() if not k.startswith(_EXTRA_PREFIX)}
    result = set_peft_model_state_dict(model, lora_part)
    if getattr(result, "unexpected_keys", None):
        raise ConfigError(f"adapter tensors do not fit this model: {result.unexpected_keys[:3]}",
                          path=adapter_dir, hint="load them onto the base they were trained on")
    extra = {k[len(_EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(_EXTRA_PREFIX)}
    if extra:
        model.load_state_dict(extra, strict=False)
    return model


# -- internals ---------------------------------------------------------------------------

class _Settings:
    """The LoRA fields `_peft_config` reads, for configs read back from adapter_config.json."""

    def __init__(self, rank: int, alpha: float, dropout: float) -> None:
        self.rank, self.alpha, self.dropout = rank, alpha, dropout


def _peft_config(settings, targets: list[str]) -> LoraConfig:
    return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(targets), bias="none")


def _adaptable(name: str, module: nn.Module) -> bool:
    if isinstance(module, LoraLayer) or ".dfl" in f".{name}" or "lora_" in name:
        return False
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and tuple(module.dilation) == (1, 1)
    return isinstance(module, nn.Linear)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(p) for p in prefixes)


def _inside(module_name: str, prefixes: tuple[str, ...]) -> bool:
    """`module_name` is one of the modules `prefixes` name ('fc' or 'fc.') or inside one."""
    return any(f"{module_name}.".startswith(p if p.endswith(".") else f"{p}.") for p in prefixes)


def _need_prefixes(prefixes: tuple[str, ...], layers: str) -> tuple[str, ...]:
    if not prefixes:
        raise ConfigError(f"lora.layers={layers!r} needs to know where the head is",
                          field="lora.layers", hint="use lora.layers=all or regex:<pattern>")
    return prefixes


def _jsonable(value):
    return sorted(value) if isinstance(value, set) else str(value)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Swap a finished folder in: move the old one aside, rename, then delete the old one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            _rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        _rmtree(old)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

