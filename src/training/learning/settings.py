"""Settings of a learning-from-corrections session (stored with the session)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from src.errors import ConfigError
from src.training.config import LoraSettings
from src.training.learning.early_stop import StopRules


def _help(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass
class LearnSettings:
    imgsz: int | None = _help("update and proposal image size; None: the base's training size", None)
    rank: int = _help("LoRA rank", 8)
    alpha: float = _help("LoRA alpha (the update is scaled by alpha / rank)", 16.0)
    layers: str = _help("where adapters go: all | head | neck+head | regex:<pattern>", "all")
    train_head: bool = _help("train the detection head in full (its tensors go in the adapter)",
                             True)
    lr: float = _help("AdamW learning rate of an update", 2e-3)
    batch: int = _help("images per optimizer step", 8)
    max_epochs: int = _help("epochs at most per update", 40)
    patience: int = _help("stop once validation has not improved for this many epochs and is "
                          "at least good_enough", 6)
    good_enough: float = _help("validation proposal score (1 - edits/shapes) that counts as good",
                               0.7)
    floor: float = _help("give up when validation is still below this after half the budget",
                         0.05)
    val_fraction: float = _help("share of corrected frames drawn for validation each epoch", 0.25)
    budget_s: float = _help("wall-time budget of one update, seconds", 20.0)
    update_every: int = _help("update after every K corrected frames (0: only on pause/demand)", 5)
    min_samples: int = _help("corrected frames needed before an update", 2)
    conf: float = _help("confidence threshold of proposals", 0.25)
    iou: float = _help("NMS IoU threshold of proposals", 0.7)
    device: str = _help("torch device of updates and proposals", "cpu")
    seed: int = _help("seed of splits and augmentation", 0)

    def __post_init__(self) -> None:
        checks = (("rank", self.rank >= 1), ("batch", self.batch >= 1),
                  ("max_epochs", self.max_epochs >= 1), ("patience", self.patience >= 1),
                  ("val_fraction", 0 < self.val_fraction < 1), ("budget_s", self.budget_s > 0),
                  ("update_every", self.update_every >= 0), ("min_samples", self.min_samples >= 2),
                  ("conf", 0 <= self.conf <= 1), ("iou", 0 <= self.iou <= 1), ("lr", self.lr > 0))
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"invalid value {getattr(self, name)!r}", field=name,
                                  hint=_FIELD_HELP.get(name, ""))

    def lora(self) -> LoraSettings:
        return LoraSettings(enabled=True, rank=self.rank, alpha=self.alpha, layers=self.layers,
                            train_head=self.train_head)

    def stop_rules(self) -> StopRules:
        return StopRules.half_budget_floor(max_epochs=self.max_epochs, patience=self.patience,
                                           good_enough=self.good_enough, floor=self.floor,
                                           budget_s=self.budget_s)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LearnSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown learning setting(s) {', '.join(unknown)}",
                              field=unknown[0], hint=f"known: {', '.join(sorted(known))}")
        return cls(**data)


_FIELD_HELP = {f.name: f.metadata.get("help", "") for f in fields(LearnSettings)}
