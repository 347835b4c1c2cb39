"""Comparing versions: each one re-evaluated now on the same dataset version and split
(YOLO through ultralytics' validator, timm through our classification metrics), with
per-class metrics and the time per image, side by side."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from src.db import datasets as datasets_repo
from src.db.records import ModelVersion
from src.errors import ModelError
from src.training import trust
from src.training.models.export import train_imgsz
from src.training.models.manager import ModelManager

_FAMILY = {"detect": "detect", "segment": "segment", "classify": "classify",
           "crop_classifier": "classify"}


@dataclass
class Evaluation:
    version: ModelVersion
    metrics: dict = field(default_factory=dict)       # name -> float
    per_class: dict = field(default_factory=dict)     # class -> {metric: float}
    ms_per_image: float = 0.0                         # preprocess + inference + postprocess
    images: int = 0


@dataclass
class Comparison:
    dataset: str                                      # 'NAME vN' or a folder
    split: str
    evaluations: list[Evaluation]


def compare_versions(manager: ModelManager, refs: list[str], *, dataset: str | None = None,
                     split: str = "val", device: str = "cpu",
                     on_progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """Evaluate every version in `refs` on one dataset (default: the first version's);
    `on_progress(done, total, what)` hears before each evaluation and after the last."""
    versions = [manager.get(ref) for ref in refs]
    if len({v.id for v in versions}) < 2:
        raise ModelError("compare needs at least two different versions", field="VERSION")
    for v in versions:
        if v.task not in _FAMILY:         # a SAM adapter: weights_path says why and what to do
            manager.weights_path(v)
    families = {_FAMILY[v.task] for v in versions}
    if len(families) > 1:
        raise ModelError(f"cannot compare versions of different tasks "
                         f"({', '.join(sorted({v.task for v in versions}))})", field="VERSION")
    label, root = _dataset(manager, versions[0], dataset)
    evaluations = []
    for done, version in enumerate(versions):
        if on_progress:
            on_progress(done, len(versions), f"evaluating {version.display_name} on {label}")
        evaluations.append(evaluate(manager, version, root, split, device))
    if on_progress:
        on_progress(len(versions), len(versions), "done")
    return Comparison(label, split, evaluations)


def _dataset(manager: ModelManager, first: ModelVersion, ref: str | None) -> tuple[str, Path]:
    project = manager.project
    if ref:
        path = Path(ref).expanduser()
        if path.is_dir():
            return str(path), path.resolve()
        from src.data.datasets import resolve_dataset
        record, path = resolve_dataset(project, ref)
        return f"{record.name} v{record.version}", path
    record = datasets_repo.get_dataset_by_id(manager.conn, first.dataset_id) \
        if first.dataset_id else None
    if record is None:
        raise ModelError(f"version {first.id} records no dataset of this project to "
                         f"evaluate on", field="--dataset", hint="pass --dataset NAME[:vN]")
    return f"{record.name} v{record.version}", project.abspath(record.path)


def evaluate(manager: ModelManager, version: ModelVersion, root: Path, split: str,
             device: str) -> Evaluation:
    if version.model_type == "timm":
        return _evaluate_timm(manager, version, root, split)
    return _evaluate_yolo(manager, version, root, split, device)


# -- YOLO ----------------------------------------------------------------------------------

def _evaluate_yolo(manager: ModelManager, version: ModelVersion, root: Path, split: str,
                   device: str) -> Evaluation:
    from ultralytics import YOLO

    weights = manager.weights_path(version)
    family = _FAMILY[version.task]
    data = root if family == "classify" else root / "data.yaml"
    _check_split(root, split, family)
    with trust.gate(manager.conn), tempfile.TemporaryDirectory(prefix="labelloop-val-") as tmp:
        trust.check_before_unpickle(weights)
        model = YOLO(str(weights), task=family)
        _check_classes(version, [str(model.names[i]) for i in sorted(model.names)], root, family)
        results = model.val(data=str(data), split=split, imgsz=train_imgsz(manager, version),
                            batch=8, device=device, plots=False, verbose=False, workers=0,
                            project=tmp, name="val", save_json=False)
    metrics = {k.removeprefix("metrics/"): float(v) for k, v in results.results_dict.items()
               if k != "fitness"}
    names = [str(model.names[i]) for i in sorted(model.names)]
    return Evaluation(version, metrics, _yolo_per_class(results, names, family),
                      float(sum(results.speed.values())), _count_images(root, split, family))


def _yolo_per_class(results, names: list[str], family: str) -> dict:
    if family != "classify":
        from src.training.yolo_trainer import _detect_per_class
        return _detect_per_class(results, names)
    matrix = getattr(getattr(results, "confusion_matrix", None), "matrix", None)
    if matrix is None:
        return {}
    table = {}
    for i, name in enumerate(names):       # ultralytics: rows predicted, columns true
        tp, predicted, true = matrix[i, i], matrix[i, :].sum(), matrix[:, i].sum()
        p = float(tp / predicted) if predicted else 0.0
        r = float(tp / true) if true else 0.0
        table[name] = {"precision": p, "recall": r,
                       "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": int(true)}
    return table


def _check_split(root: Path, split: str, family: str) -> None:
    if family == "classify":
        if not (root / split).is_dir():
            raise ModelError(f"the dataset has no {split!r} split", path=root, field="--split")
        return
    import yaml
    data = yaml.safe_load((root / "data.yaml").read_text()) or {}
    if not data.get(split):
        raise ModelError(f"the dataset has no {split!r} split", path=root / "data.yaml",
                         field="--split", hint="use --split val")


def _count_images(root: Path, split: str, family: str) -> int:
    from src.training.image_folder import IMAGE_SUFFIXES
    folder = root / split if family == "classify" else root / "images" / split
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) \
        if folder.is_dir() else 0


def _check_classes(version: ModelVersion, model_names: list[str], root: Path,
                   family: str) -> None:
    from src.training.image_folder import _class_names
    if family == "classify":
        dataset_names = _class_names(root)
    else:
        import yaml
        names = (yaml.safe_load((root / "data.yaml").read_text()) or {}).get("names") or {}
        dataset_names = [str(names[k]) for k in sorted(names)] if isinstance(names, dict) \
            else [str(n) for n in names]
    if model_names != dataset_names:
        raise ModelError(f"version {version.id} predicts classes {model_names[:10]} but the "
                         f"dataset has {dataset_names[:10]}", field="--dataset",
                         hint="compare on a dataset with the same classes")


# -- timm ----------------------------------------------------------------------------------

def _evaluate_timm(manager: ModelManager, version: ModelVersion, root: Path,
                   split: str) -> Evaluation:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from src.training.image_folder import ImageClassDataset, load_splits
    from src.training.metrics import classification_metrics, scalar_metrics
    from src.training.models.timm_model import load_timm_classifier

    model, config = load_timm_classifier(manager, version)
    splits = load_splits(root)
    _check_classes(version, list(config["class_names"]), root, "classify")
    items = splits.samples.get(split) or []
    if not items:
        raise ModelError(f"the dataset has no images in its {split!r} split", path=root,
                         field="--split")
    loader = DataLoader(ImageClassDataset(items, int(config["imgsz"]), train=False),
                        batch_size=16, shuffle=False, num_workers=0)
    probs, labels, seconds = [], [], 0.0
    with torch.no_grad():
        for images, target in loader:
            start = time.perf_counter()
            probs.append(torch.softmax(model(images), 1))
            seconds += time.perf_counter() - start
            labels.append(target)
    metrics, per_class = classification_metrics(torch.cat(labels).numpy(),
                                                torch.cat(probs).numpy().astype(np.float64),
                                                splits.class_names)
    return Evaluation(version, scalar_metrics(metrics), per_class,
                      1000 * seconds / len(items), len(items))
