"""TensorBoard callback: losses, metrics and lr as scalars, the confusion matrix and a grid of
predictions beside ground truth as images, hparams with the final metrics.

One small listener on the EventBus, so it works for YOLO and timm runs alike.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from src.training.events import EventBus

# headless rendering; set before matplotlib is first imported (it is imported lazily below)
os.environ.setdefault("MPLBACKEND", "Agg")


class TensorBoardLogger:
    def __init__(self, log_dir: Path, log_images_every: int = 5) -> None:
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.every = log_images_every
        self.last_epoch = -1
        self.last_samples: list[dict] = []

    def attach(self, bus: EventBus) -> "TensorBoardLogger":
        bus.on("on_train_epoch_end", self._on_train_epoch_end)
        bus.on("on_fit_epoch_end", self._on_fit_epoch_end)
        return self

    def _on_train_epoch_end(self, _event: str, payload: dict) -> None:
        if "losses" in payload and "epoch" in payload:
            self._scalars("train", payload["losses"], payload["epoch"])

    def _on_fit_epoch_end(self, _event: str, payload: dict) -> None:
        epoch = payload.get("epoch")
        if epoch is None:
            return
        self._scalars("val", payload.get("metrics", {}), epoch)
        if payload.get("lr") is not None:
            self.writer.add_scalar("lr", float(payload["lr"]), epoch)
        if payload.get("losses") and "epoch" in payload:
            self._scalars("train", payload["losses"], epoch)
        self.last_epoch = max(self.last_epoch, epoch)
        self.last_samples = payload.get("samples") or self.last_samples
        if self.every and (epoch + 1) % self.every == 0:
            self._images(payload, epoch)
        self.writer.flush()

    def _scalars(self, prefix: str, values: dict, step: int) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def _images(self, payload: dict, step: int) -> None:
        names = payload.get("class_names") or []
        if payload.get("confusion_matrix") and names:
            self.writer.add_figure("confusion_matrix",
                                   confusion_figure(payload["confusion_matrix"], names), step)
        if payload.get("samples") and names:
            self.writer.add_figure("predictions", prediction_grid(payload["samples"], names),
                                   step)

    def finish(self, hparams: dict, metrics: dict, payload: dict | None = None) -> None:
        """Final images (whatever the cadence) and hparams with the final metrics; closes."""
        if payload:
            self._images({"samples": self.last_samples, **payload}, max(self.last_epoch, 0))
        scalars = {f"hparam/{k}": float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        clean = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                 for k, v in hparams.items()}
        if scalars:
            self.writer.add_hparams(clean, scalars, run_name="hparams")
        self.writer.close()


def confusion_figure(matrix: list[list[int]], names: list[str]):
    """A labelled confusion-matrix heat map (rows: true class, columns: predicted)."""
    from matplotlib.figure import Figure
    matrix_np = np.asarray(matrix)
    fig = Figure(figsize=(1.2 + 0.6 * len(names), 1 + 0.6 * len(names)))
    ax = fig.add_subplot()
    ax.imshow(matrix_np, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix_np):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix_np.max() / 2 else "black")
    fig.tight_layout()
    return fig


def prediction_grid(samples: list[dict], names: list[str]):
    """Classifiers: images titled 'true → predicted (confidence)', green when right, red when
    wrong. Detectors (samples with 'boxes'): ground truth in green beside predictions in red."""
    if samples and "boxes" in samples[0]:
        return _detection_grid(samples, names)
    from matplotlib.figure import Figure
    from PIL import Image
    cols = min(4, len(samples))
    rows = math.ceil(len(samples) / cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows))
    for k, sample in enumerate(samples):
        ax = fig.add_subplot(rows, cols, k + 1)
        with Image.open(sample["path"]) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        right = sample["label"] == sample["pred"]
        ax.set_title(f"{names[sample['label']]} → {names[sample['pred']]} "
                     f"({sample.get('conf', 0):.2f})", fontsize=8,
                     color="green" if right else "red")
        ax.axis("off")
    fig.tight_layout()
    return fig


def _detection_grid(samples: list[dict], names: list[str]):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from PIL import Image

    def name(cls: int) -> str:
        return names[cls] if 0 <= cls < len(names) else str(cls)

    fig = Figure(figsize=(4.4, 2.2 * len(samples)))
    for k, sample in enumerate(samples):
        with Image.open(sample["path"]) as im:
            image = np.asarray(im.convert("RGB"))
        panels = (("ground truth", sample["boxes"], "lime"),
                  ("predicted", sample["pred_boxes"], "red"))
        for col, (title, boxes, color) in enumerate(panels):
            ax = fig.add_subplot(len(samples), 2, 2 * k + col + 1)
            ax.imshow(image)
            for box in boxes:
                x1, y1, x2, y2, cls = box[:5]
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color, lw=1))
                label = name(int(cls)) + (f" {box[5]:.2f}" if len(box) > 5 else "")
                ax.text(x1, y1, label, color=color, fontsize=6, va="bottom")
            ax.set_title(f"{title} ({len(boxes)})", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig
