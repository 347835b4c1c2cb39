"""What a finished run leaves for people and tools: metadata.json, report.json, report.md."""
from __future__ import annotations

import json
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path

from src.atomic_files import write_text_atomic
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
        "imbalance": {**config_to_dict(cfg)["imbalance"], "loss": describe_loss(cfg.imbalance)},
        "lora": config_to_dict(cfg)["lora"],
        "params": outcome.params,
        "base_model": outcome.base_model_source,
    }


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
    lines.append(f"- imbalance: {report['imbalance']['loss']}; balanced sampler "
                 f"{'on' if report['imbalance']['balanced_sampler'] else 'off'}")
    if report["lora"]["enabled"]:
        lora = report["lora"]
        lines.append(f"- LoRA: rank {lora['rank']}, alpha {lora['alpha']}, layers "
                     f"{lora['layers']}, head trained {lora['train_head']}")
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["metrics"].items()]
    lines += _per_class_table(report["per_class"])
    lines += _confusion_table(report.get("confusion_matrix"), report.get("class_names") or [])
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
