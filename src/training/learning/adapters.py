"""The adapter of a learning session, saved in its folder: safetensors + JSON metadata.

Layout (the format of `src/training/lora.py`, so `lora.load_adapters` reads it as well):

    <session>/adapter/adapter_model.safetensors   LoRA tensors (+ any fully trained tensors)
    <session>/adapter/adapter_config.json         PEFT config, targets, extra.meta = AdapterMeta
    <session>/optimizer.pt                        optional: the optimizer state that trained it

The folder is built beside its place and renamed over it, so a reader (or a restart after a
crash) sees the previous adapter or the new one, never a mix. Two ways in:
- a torch model with PEFT adapters injected in place: `save_model` / `load_into`
  (uses `lora.save_adapters` / `lora.load_adapters`);
- any tensors you manage yourself (e.g. a SAM decoder's LoRA state): `save_tensors` /
  `load_tensors`.

    store = AdapterStore(session_dir)
    store.save_model(model, lora_settings, targets, AdapterMeta.now("model:3", 0.71, "mAP50"))
    meta = store.load_into(fresh_base_model)     # None when there is no adapter
    store.discard()

The optimizer state (e.g. AdamW's moments) lets the next update continue the same optimizer
after a restart: `save_optimizer` writes it beside the adapter (torch.save, atomic) tagged
with the adapter's `created_at`; `load_optimizer` reads it with `weights_only=True` (no
pickled code) and returns None when it belongs to another adapter than the one saved now.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.errors import ConfigError
from src.training import lora

log = logging.getLogger(__name__)
ADAPTER_DIR = "adapter"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass(frozen=True)
class AdapterMeta:
    """What an adapter file says about itself."""

    base_ref: str                       # the base it was trained on (model version ref, path)
    metric: float | None                # its validation metric at save time
    metric_name: str = "val"
    created_at: float = 0.0             # time.time()
    samples: int = 0                    # samples it was trained on
    extra: dict = field(default_factory=dict)

    @classmethod
    def now(cls, base_ref: str, metric: float | None, metric_name: str = "val", *,
            samples: int = 0, **extra) -> "AdapterMeta":
        return cls(str(base_ref), None if metric is None else float(metric), metric_name,
                   time.time(), int(samples), dict(extra))

    @classmethod
    def from_dict(cls, data: dict) -> "AdapterMeta":
        known = {k: data[k] for k in ("base_ref", "metric", "metric_name", "created_at",
                                       "samples", "extra") if k in data}
        return cls(**known)


class AdapterStore:
    """Save, load and discard the one current adapter of a session folder."""

    def __init__(self, session_dir: str | Path) -> None:
        self.folder = Path(session_dir) / ADAPTER_DIR

    def exists(self) -> bool:
        return (self.folder / lora.ADAPTER_WEIGHTS).is_file() and self._config_path.is_file()

    def meta(self) -> AdapterMeta | None:
        """The saved adapter's metadata, None when there is none."""
        if not self.exists():
            return None
        return AdapterMeta.from_dict(self._config().get("extra", {}).get("meta", {}))

    def save_model(self, model, settings, targets: list[str], meta: AdapterMeta,
                   trainable_prefixes: tuple[str, ...] = ()) -> Path:
        """Save the PEFT adapters injected in `model` (lora.inject_lora) with `meta`."""
        return lora.save_adapters(model, self.folder, settings, targets, trainable_prefixes,
                                  extra={"meta": asdict(meta)})

    def load_into(self, model) -> AdapterMeta | None:
        """Inject and load the saved adapters into a base `model`; None when there is none."""
        if not self.exists():
            return None
        lora.load_adapters(model, self.folder)
        return self.meta()

    def save_tensors(self, tensors: dict, meta: AdapterMeta, config: dict | None = None) -> Path:
        """Save a tensor dict you manage yourself, with `meta` and your own `config` keys."""
        from safetensors.torch import save_file

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{ADAPTER_DIR}."))
        try:
            flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            save_file(flat, str(tmp / lora.ADAPTER_WEIGHTS))
            body = {**(config or {}), "extra": {"meta": asdict(meta)}}
            (tmp / lora.ADAPTER_CONFIG).write_text(json.dumps(body, indent=2, default=str),
                                                   encoding="utf-8")
            _swap_in(tmp, self.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.folder

    def load_tensors(self) -> tuple[dict, AdapterMeta] | None:
        """The tensors and metadata saved by `save_tensors` (or `save_model`); None if none."""
        if not self.exists():
            return None
        from safetensors.torch import load_file

        return load_file(str(self.folder / lora.ADAPTER_WEIGHTS)), self.meta()

    def config(self) -> dict:
        """The whole adapter_config.json (PEFT config, targets, your keys)."""
        return self._config() if self.exists() else {}

    def save_optimizer(self, state: dict) -> Path:
        """Save the optimizer state that trained the adapter saved now (call after saving it)."""
        from src.atomic_files import torch_save_atomic

        meta = self.meta()
        if meta is None:
            raise ConfigError("no adapter to go with this optimizer state", path=self.folder,
                              hint="save the adapter first")
        return torch_save_atomic({"adapter_created_at": meta.created_at, "state": state},
                                 self._optimizer_path)

    def load_optimizer(self) -> dict | None:
        """The optimizer state saved with the current adapter; None when there is none, it
        is unreadable, or it was saved with another adapter."""
        import torch

        meta = self.meta()
        if meta is None or not self._optimizer_path.is_file():
            return None
        try:
            saved = torch.load(self._optimizer_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or foreign file only costs the moments
            log.warning("optimizer state %s is unreadable (%s): a fresh optimizer is used",
                        self._optimizer_path, exc)
            return None
        if not isinstance(saved, dict) or saved.get("adapter_created_at") != meta.created_at:
            return None
        return saved.get("state")

    @property
    def _optimizer_path(self) -> Path:
        return self.folder.parent / OPTIMIZER_FILE

    def discard(self) -> bool:
        """Delete the adapter (renamed away first, so it is gone at once) and its optimizer
        state; False if there was no adapter."""
        self._optimizer_path.unlink(missing_ok=True)
        if not self.folder.exists():
            return False
        trash = self.folder.with_name(f".{ADAPTER_DIR}.discarded")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(self.folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    @property
    def _config_path(self) -> Path:
        return self.folder / lora.ADAPTER_CONFIG

    def _config(self) -> dict:
        try:
            return json.loads(self._config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"adapter metadata is unreadable: {exc}", path=self._config_path,
                              hint="discard the adapter and update again") from exc


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the old folder aside, rename the new one in, delete the old one."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
