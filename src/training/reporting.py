"""What a finished run leaves for people and tools: metadata.json, report.json, report.md."""
from __future__ import annotations

import json
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path

from src.atomic_files import write_text_atomic
from src.training import distributed as dist
from src.training.config import TrainConfig, config_to_dict
from src.training.losses import describe_loss
from src.training.outcome import TrainOutcome

_LIBRARIES = ("torch", "torchvision", "timm", "ultralytics", "peft", "scikit-learn", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def write_json(path: Path, data: dict) -> Path:
    """JSON via temp file + os.replace."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str))


def build_metadata(*, run_id: int, cfg: TrainConfig, dataset: dict, outcome: TrainOutcome,
                   timings: dict, device: str) -> dict:
    """metadata.json: config, dataset name/version/hash, classes, metrics, params, timings."""
    return {
        "run_id": run_id,
        "status": outcome.status,
        "config": config_to_dict(cfg),
        "dataset": dataset,
        "classes": outcome.metrics.get("class_names", list(outcome.per_class)),
        "metrics": _flat(outcome.metrics),
        "per_class": outcome.per_class,
        "params": outcome.params,
        "base_model": outcome.base_model_source,
        "epochs_done": outcome.epochs_done,
        "timings": timings,
        "device": device,
        "libraries": library_versions(),
        "files": {k: str(v) for k, v in (("best", outcome.best_checkpoint),
                                         ("last", outcome.last_checkpoint),
                                         ("merged_model", outcome.merged_model),
                                         ("adapters", outcome.adapter_dir)) if v},
    }


def build_report(*, run_id: int, cfg: TrainConfig, dataset: dict,
                 outcome: TrainOutcome) -> dict:
    """report.json: per-class table, confusion matrix, imbalance settings used."""
    return {
        "run_id": run_id,
        "name": cfg.name,
        "model": f"{cfg.model_type}:{cfg.model}",
        "task": cfg.task,
        "dataset": dataset,
        "status": outcome.status,
        "metrics": _flat(outcome.metrics),
        "per_class": outcome.per_class,
        "class_names": outcome.metrics.get("class_names", list(outcome.per_class)),
        "confusion_matrix": outcome.metrics.get("confusion_matrix"),
        "confusion_labels": confusion_labels(outcome.metrics),
        "imbalance": imbalance_effects(cfg),
        "lora": config_to_dict(cfg)["lora"],
        "params": outcome.params,
        "base_model": outcome.base_model_source,
    }


def confusion_labels(metrics: dict) -> list[str]:
    """Row/column labels of the confusion matrix: the classes, plus 'background' for a
    detection matrix (its extra row and column — not a class of the model)."""
    return list(metrics.get("confusion_labels") or metrics.get("class_names") or [])


def imbalance_effects(cfg: TrainConfig) -> dict:
    """{'applied': [...], 'ignored': [... with the reason]}: what the imbalance settings did
    with this model type — a setting a trainer does not support is never reported as used."""
    if cfg.model_type == "yolo":
        return _yolo_imbalance(cfg)
    return _timm_imbalance(cfg)


def _yolo_imbalance(cfg: TrainConfig) -> dict:
    imb, applied, ignored = cfg.imbalance, [], []
    if imb.class_weights and cfg.task != "classify":
        applied.append("class weights: ultralytics cls_pw=1.0 (inverse class frequency in the "
                       "classification loss)")
    elif imb.class_weights:
        ignored.append("class weights: not supported by ultralytics classification; ignored")
    if (cfg.yolo or {}).get("cls_pw"):
        applied.append(f"class weights: ultralytics cls_pw={cfg.yolo['cls_pw']} (yolo section)")
    if getattr(imb, "repeat_factor_threshold", 0) > 0 and "," in str(cfg.device):
        ignored.append("repeat-factor sampling: not supported with multi-GPU (DDP); ignored")
    elif getattr(imb, "repeat_factor_threshold", 0) > 0:
        applied.append(f"repeat-factor sampling: images holding a class found in fewer than "
                       f"{imb.repeat_factor_threshold:g} of the training images are repeated "
                       f"each epoch")
    if imb.focal_loss:
        ignored.append("focal loss: not supported by the YOLO trainer; ignored")
    if imb.balanced_sampler:
        ignored.append("balanced sampler: not supported by the YOLO trainer; ignored "
                       "(imbalance.repeat_factor_threshold repeats rare-class images)")
    return {"applied": applied, "ignored": ignored}


def _timm_imbalance(cfg: TrainConfig) -> dict:
    imb = cfg.imbalance
    applied, ignored = [f"loss: {describe_loss(imb)}"], []
    if imb.balanced_sampler and dist.world().size > 1:
        ignored.append("balanced sampler: not used under torchrun (each rank draws its shard "
                       "with a DistributedSampler); ignored")
    elif imb.balanced_sampler:
        applied.append("balanced sampler: batches drawn with equal expected class counts")
    if getattr(imb, "repeat_factor_threshold", 0) > 0:
        ignored.append("repeat-factor sampling: YOLO only; ignored (imbalance.balanced_sampler "
                       "rebalances classifier batches)")
    return {"applied": applied, "ignored": ignored, "loss": describe_loss(imb)}


def report_markdown(report: dict) -> str:
    """report.md: the same report as a readable page."""
    lines = [f"# Training report: {report['name']} (run {report['run_id']})", "",
             f"- model: {report['model']} ({report['task']}), status **{report['status']}**",
             f"- dataset: {_dataset_words(report['dataset'])}",
             f"- {report['base_model'] or 'base: n/a'}"]
    params = report.get("params") or {}
    if params:
        lines.append(f"- trainable parameters: {params.get('trainable', 0):,} of "
                     f"{params.get('total', 0):,} ({100 * params.get('share', 0):.1f}%)")
    imbalance = report["imbalance"]
    lines.append(f"- imbalance handling: {'; '.join(imbalance['applied']) or 'none'}")
    lines += [f"- ignored: {note}" for note in imbalance["ignored"]]
    if report["lora"]["enabled"]:
        lora = report["lora"]
        lines.append(f"- LoRA: rank {lora['rank']}, alpha {lora['alpha']}, layers "
                     f"{lora['layers']}, head trained {lora['train_head']}")
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["metrics"].items()]
    lines += _per_class_table(report["per_class"])
    lines += _confusion_table(report.get("confusion_matrix"),
                              report.get("confusion_labels") or report.get("class_names") or [])
    return "\n".join(lines) + "\n"


def _per_class_table(per_class: dict) -> list[str]:
    if not per_class:
        return []
    columns = sorted({k for row in per_class.values() for k in row},
                     key=lambda c: ("precision", "recall", "f1", "support").index(c)
                     if c in ("precision", "recall", "f1", "support") else 9)
    lines = ["", "## Per class", "", "| class | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, row in per_class.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return lines


def _confusion_table(matrix, names: list[str]) -> list[str]:
    if not matrix or not names:
        return []
    lines = ["", "## Confusion matrix (rows: true, columns: predicted)", "",
             "| true \\ pred | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name, row in zip(names, matrix):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def _dataset_words(dataset: dict) -> str:
    if dataset.get("name"):
        return f"{dataset['name']} v{dataset.get('version')} (hash {dataset.get('hash') or '-'})"
    return str(dataset.get("path"))


def _flat(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))
            and not isinstance(v, bool)}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)
