"""What the training monitor shows, folded from the training events (no widgets here, so the
arithmetic is testable on its own)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class TrainingProgress:
    epochs: int = 0
    epoch: int = -1                # 0-based epoch in progress
    batch: int = -1
    batches: int = 0
    eta_s: float | None = None
    epoch_losses: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list))
    batch_loss: list[tuple[float, float]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list))
    lr: list[tuple[float, float]] = field(default_factory=list)
    latest_metrics: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    checkpoint_epoch: int | None = None    # the last epoch saved (a resume starts after it)

    def update(self, event: str, p: dict) -> None:
        self.epochs = int(p.get("epochs") or self.epochs)
        if p.get("eta_s") is not None:
            self.eta_s = float(p["eta_s"])
        if p.get("message"):
            self.messages.append(str(p["message"]))
        if event == "on_train_epoch_start":
            self.epoch, self.batch = int(p.get("epoch", 0)), -1
            self.batches = int(p.get("batches") or self.batches)
        elif event == "on_train_batch_end":
            self._on_batch(p)
        elif event == "on_fit_epoch_end":
            self._on_epoch(p)
        elif event == "on_model_save":
            self.checkpoint_epoch = int(p.get("epoch", self.epoch))

    def _on_batch(self, p: dict) -> None:
        self.epoch, self.batch = int(p.get("epoch", self.epoch)), int(p.get("batch", 0))
        self.batches = int(p.get("batches") or self.batches)
        losses = _numbers(p.get("losses"))
        if losses and self.batches:
            x = self.epoch + (self.batch + 1) / self.batches
            self.batch_loss.append((x, sum(losses.values())))

    def _on_epoch(self, p: dict) -> None:
        x = int(p.get("epoch", self.epoch)) + 1
        if any(px == x for px, _ in self.lr) or any(
                px == x for series in self.epoch_losses.values() for px, _ in series):
            return          # ultralytics fires on_fit_epoch_end once more in its final eval
        for name, value in _numbers(p.get("losses")).items():
            self.epoch_losses[name].append((x, value))
        for name, value in _numbers(p.get("metrics")).items():
            target = self.epoch_losses if "loss" in name else self.metrics
            target[name].append((x, value))
            self.latest_metrics[name] = value
        if isinstance(p.get("lr"), (int, float)):
            self.lr.append((x, float(p["lr"])))

    @property
    def fraction(self) -> float:
        """Share of the whole training done, 0..1."""
        if not self.epochs or self.epoch < 0:
            return 0.0
        within = (self.batch + 1) / self.batches if self.batches else 0.0
        return min(1.0, (self.epoch + within) / self.epochs)

    def summary(self) -> str:
        if self.epoch < 0:
            return "starting…"
        text = f"epoch {self.epoch + 1}/{self.epochs}"
        if self.batches:
            text += f" · batch {self.batch + 1}/{self.batches}"
        return f"{text} · ETA {format_duration(self.eta_s)}"


def _numbers(values) -> dict[str, float]:
    return {str(k): float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
