"""Promote a session's adapter: base + adapter merged into a new registered model version.

The version folder (models/<task>/<name>/v<N>/) holds model.pt (the base checkpoint with
the merged model, loadable by ultralytics like any trained version), the adapter as it was
saved (adapters/) and metadata.json; its parent is the base, its lineage the base's plus
the base. Built in a staging folder, renamed into place in the transaction that registers it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from src.db import model_versions
from src.db.connection import transaction
from src.db.records import ModelVersion
from src.training.learning.detector_update import adapted_copy, merged_model
from src.training.models import ModelManager
from src.training.models.manager import check_display_name, scan_files
from src.training.models.registry import lineage_entry


def promote_adapter(session, name: str) -> ModelVersion:
    project, base = session.project, session.base
    name = check_display_name(name)
    parent = project.models_dir / base.task / name
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".register-{os.getpid()}-"))
    placed = None
    try:
        meta = session.adapters.meta()
        _write_checkpoint(session, tmp / "model.pt")
        shutil.copytree(session.adapters.folder, tmp / "adapters")
        (tmp / "metadata.json").write_text(json.dumps({
            "config": {"imgsz": session.imgsz, "task": base.task},
            "learning": {"session_id": session.record.id, "base": base.display_name,
                         "samples": meta.samples, "val_proposal_score": meta.metric,
                         "base_proposal_score": meta.extra.get("base_metric")}}, indent=2))
        with transaction(project.conn):
            version = model_versions.next_version(project.conn, base.task, name)
            dest = parent / f"v{version}"
            if dest.exists():   # models/ is shared by the projects of the machine
                dest = dest.with_name(f"v{version}-{project.root.name}-s{session.record.id}")
            os.replace(tmp, dest)
            placed = dest
            return _register(session, name, dest, meta)
    except BaseException:
        if placed is not None:
            shutil.rmtree(placed, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_checkpoint(session, path: Path) -> None:
    """The base's checkpoint dict with the merged model in it (fp16, as ultralytics saves)."""
    from ultralytics.utils.patches import torch_load

    from src.atomic_files import torch_save_atomic
    from src.training import trust

    weights = ModelManager(session.project).weights_path(session.base)
    with trust.gate(session.project.conn):
        trust.check_before_unpickle(weights)
        ckpt = torch_load(weights, map_location="cpu")
    merged = merged_model(adapted_copy(session._base_model(), session.settings,
                                       session.adapters.folder))
    merged.args = getattr(session._base_model(), "args", None)
    ckpt.update({"model": merged.half(), "ema": None, "optimizer": None, "updates": None,
                 "learned_from_corrections": {"session_id": session.record.id,
                                              "base": session.base.display_name}})
    torch_save_atomic(ckpt, path)


def _register(session, name: str, folder: Path, meta) -> ModelVersion:
    project, base, conn = session.project, session.base, session.project.conn
    files = scan_files(project, folder)
    for f in files:
        model_versions.add_trusted(conn, f.sha256, "model", str(project.abspath(f.path)))
    return model_versions.add_model_version(conn, ModelVersion(
        task=base.task, name=name, version=0, path=project.relpath(folder / "model.pt"),
        format="pt", metrics={"learning/val_proposal_score": meta.metric,
                              "learning/base_proposal_score": meta.extra.get("base_metric"),
                              "learning/samples": meta.samples},
        is_active=False, display_name=name, model_type=base.model_type,
        classes=list(base.classes), dataset_id=None, dataset={},
        parent_id=base.id, lineage=[lineage_entry(base), *base.lineage],
        description=f"{base.display_name} + a LoRA adapter learned from "
                    f"{meta.samples} corrected frames (learning session "
                    f"{session.record.id})", origin="adapted"), files)
