"""LIT-LoRA adapters of SAM's mask decoder as model versions of their own kind.

A `sam_adapter` version is not a predictor: it adapts a SAM base for tracking. It has its
own active version (the partial unique index keeps one active per task), never the
segmenter `predict` uses, and `ModelManager.weights_path` refuses it to every predictor,
trainer and comparison. Its folder, models/sam_adapter/<series>/v<N>/:

    model.safetensors     the LoRA tensors (role 'weights': what bundles and duplicates key on)
    adapter_config.json   PEFT config and targets (src/training/lora.py's format)
    metadata.json         kind, base (SAM name, weights sha256, untrained), learned_from,
                          samples, val IoU, epochs

Its lineage's first entry is the base (the SAM weights), so a bundle carries it. An adapter
learned on an untrained SAM (tests, timing) is refused unless the caller passes
`allow_untrained=True` (CLI `--untrained`, the GUI's LABELLOOP_SAM_UNTRAINED opt-in); it is
then marked in its name, metadata and lineage.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from src.db import model_versions as repo
from src.db.records import ModelVersion
from src.errors import ModelError
from src.training import trust
from src.training.models.manager import (SAM_ADAPTER_TASK, ModelManager, check_display_name,
                                         scan_files)

MODEL_TYPE = "sam_lora"
ADAPTER_WEIGHTS = "adapter_model.safetensors"     # names inside a LitLora adapter folder
ADAPTER_CONFIG = "adapter_config.json"
_SHA_CACHE: dict[tuple, str] = {}


@dataclass(frozen=True)
class SamBase:
    """The SAM model an adapter was learned on: name, weights file and its sha256."""
    name: str
    file: str | None            # None: the architecture built without weights
    sha256: str | None
    image_size: int = 1024

    @property
    def untrained(self) -> bool:
        return self.sha256 is None

    @classmethod
    def of(cls, weights, image_size: int = 1024) -> "SamBase":
        """From a `SamWeights` (the engine's): hashes the weights file (cached per file)."""
        if weights.path is None:
            return cls(weights.name, None, None, int(image_size))
        return cls(weights.name, str(weights.path), weights_sha256(weights.path),
                   int(image_size))

    def words(self) -> str:
        return f"{self.name} (untrained)" if self.untrained else \
            f"{self.name} sha256 {self.sha256[:12]}"


def weights_sha256(path: str | Path) -> str:
    """sha256 of a base weights file, remembered per (path, size, mtime): SAM files are big."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = trust.sha256_file(path)
    return _SHA_CACHE[key]


def is_sam_adapter(version: ModelVersion) -> bool:
    return version.task == SAM_ADAPTER_TASK


# -- registering -----------------------------------------------------------------------------

def register_sam_adapter(manager: ModelManager, adapter_dir: Path, base: SamBase,
                         learned_from: dict, *, name: str | None = None,
                         allow_untrained: bool = False) -> ModelVersion:
    """Copy the adapter in `adapter_dir` (a LitLora object folder's adapter/) into a new
    version folder and register it; ModelError when there is none, it was learned on another
    base, it is registered already, or its base is untrained without `allow_untrained`."""
    from src.training.learning.adapters import AdapterStore

    store = AdapterStore(Path(adapter_dir).parent)
    if Path(adapter_dir).name != store.folder.name or not store.exists():
        raise ModelError("no LIT-LoRA adapter to register here", path=adapter_dir,
                         hint="correct tracked frames with 'Learn from corrections' on and "
                              "update first")
    meta = store.meta()
    _check_base(base, meta.base_ref, allow_untrained)
    _refuse_registered(manager, store.folder / ADAPTER_WEIGHTS)
    display = check_display_name(name) if name else _readable_name(meta.metric, base)
    series = _series(base, learned_from)
    metadata = {"kind": SAM_ADAPTER_TASK, "base": asdict(base), "learned_from": learned_from,
                "adapter": {"base_ref": meta.base_ref, "samples": meta.samples,
                            "val_iou": meta.metric, "created_at": meta.created_at,
                            **{k: v for k, v in meta.extra.items() if k in ("epochs", "reason")}}}
    folder = _build_folder(manager, series, store.folder, metadata)
    try:
        return repo.add_model_version(manager.conn, ModelVersion(
            task=SAM_ADAPTER_TASK, name=series, version=0,
            path=manager.project.relpath(folder / "model.safetensors"), format="safetensors",
            metrics=_metrics(meta), display_name=display, model_type=MODEL_TYPE,
            dataset={"learned_from": _learned_words(learned_from)},
            lineage=[base_lineage_entry(base)]), scan_files(manager.project, folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _check_base(base: SamBase, base_ref: str, allow_untrained: bool) -> None:
    learned_untrained = "untrained" in base_ref
    size = base_ref.rsplit("-", 1)[-1]     # SamEngine.key: <name>-<imgsz>-<file size|untrained>
    other_file = size.isdigit() and base.file is not None and \
        int(size) != Path(base.file).stat().st_size
    if not base_ref.startswith(base.name) or learned_untrained != base.untrained or other_file:
        raise ModelError(f"this adapter was learned on {base_ref!r}, not on {base.words()}",
                         field="base", hint="register it with the SAM model it was learned on")
    if base.untrained and not allow_untrained:
        raise ModelError("this adapter was learned on an untrained SAM (testing only); it is "
                         "not registered", field="base",
                         hint=f"put {base.name}.pt in models/base/ and learn again, or pass "
                              f"--untrained to register it marked as untrained")


def _refuse_registered(manager: ModelManager, weights: Path) -> None:
    for version_id in repo.versions_with_file(manager.conn, trust.sha256_file(weights)):
        raise ModelError(f"this adapter is already registered as version {version_id}",
                         field="adapter", hint=f"use version {version_id}")


def _readable_name(val_iou: float | None, base: SamBase) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    metric = f"-valIoU={val_iou:.3f}" if isinstance(val_iou, (int, float)) else ""
    return f"{SAM_ADAPTER_TASK}-{stamp}{metric}" + ("-untrained-base" if base.untrained else "")


def _series(base: SamBase, learned_from: dict) -> str:
    source = str(learned_from.get("source") or learned_from.get("source_id") or "source")
    raw = f"{base.name}-{source}-object{learned_from.get('object_id')}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)[:80].strip(".") \
        or "sam"


def _metrics(meta) -> dict:
    out = {"samples": meta.samples}
    if isinstance(meta.metric, (int, float)):
        out["val_iou"] = float(meta.metric)
    if isinstance(meta.extra.get("epochs"), int):
        out["epochs"] = meta.extra["epochs"]
    return out


def _learned_words(learned_from: dict) -> str:
    return f"{learned_from.get('source') or learned_from.get('source_id')} object " \
           f"{learned_from.get('object_id')}"


def base_lineage_entry(base: SamBase) -> dict:
    """The base as a lineage entry (what bundles carry and the Models dialog shows)."""
    return {"display_name": f"SAM base {base.words()}", "task": "sam_base",
            "created_at": None, "weights_sha256": base.sha256}


def _build_folder(manager: ModelManager, series: str, adapter: Path, metadata: dict) -> Path:
    """models/sam_adapter/<series>/v<N>/, filled in a temp folder beside it, then renamed."""
    parent = manager.project.models_dir / SAM_ADAPTER_TASK / series
    parent.mkdir(parents=True, exist_ok=True)
    n = repo.next_version(manager.conn, SAM_ADAPTER_TASK, series)
    while (parent / f"v{n}").exists():
        n += 1
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".v{n}."))
    try:
        shutil.copyfile(adapter / ADAPTER_WEIGHTS, tmp / "model.safetensors")
        shutil.copyfile(adapter / ADAPTER_CONFIG, tmp / ADAPTER_CONFIG)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str),
                                           encoding="utf-8")
        os.replace(tmp, parent / f"v{n}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return parent / f"v{n}"


# -- loading back ----------------------------------------------------------------------------

def version_metadata(manager: ModelManager, version: ModelVersion) -> dict:
    """The version's metadata.json, verified against its sha256."""
    files = manager.verified_files(version)
    if "metadata" not in files:
        raise ModelError(f"version {version.id} has no metadata.json", path=version.path)
    return json.loads(files["metadata"].read_text(encoding="utf-8"))


def require_adapter(version: ModelVersion) -> ModelVersion:
    if not is_sam_adapter(version):
        raise ModelError(f"version {version.id} ({version.display_name}) is a {version.task} "
                         f"model, not a SAM adapter", field="--adapter",
                         hint="`python main.py models list --task sam_adapter` lists adapters")
    return version


def load_adapter_decoder(manager: ModelManager, ref: str | int, engine):
    """(version, a copy of `engine`'s base mask decoder with the version's LoRA loaded), its
    files verified first; ModelError when it was learned on another SAM base."""
    import copy

    from src.training import lora

    version = require_adapter(manager.get(ref, SAM_ADAPTER_TASK))
    base = SamBase(**version_metadata(manager, version)["base"])
    here = SamBase.of(engine.weights, engine.image_size)
    if (base.name, base.sha256) != (here.name, here.sha256):
        raise ModelError(f"adapter {version.display_name} was learned on {base.words()}; "
                         f"the SAM model loaded is {here.words()}", field="--adapter",
                         hint=f"load {base.name} with the same weights file")
    files = manager.verified_files(version)
    with tempfile.TemporaryDirectory(prefix="labelloop-sam-adapter-") as tmp:
        shutil.copyfile(files["weights"], Path(tmp) / ADAPTER_WEIGHTS)
        shutil.copyfile(files[f"file/{ADAPTER_CONFIG}"], Path(tmp) / ADAPTER_CONFIG)
        trust.verify_sha256(Path(tmp) / ADAPTER_WEIGHTS, _sha(version, "weights"))
        decoder = copy.deepcopy(engine.base_decoder)
        lora.load_adapters(decoder, Path(tmp))
    lora.freeze_base(decoder)
    return version, decoder.eval()


def _sha(version: ModelVersion, role: str) -> str:
    return next(f.sha256 for f in version.files if f.role == role)
