"""What a trainer hands back to the run manager when it returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class TrainOutcome:
    status: str                                  # 'completed' | 'cancelled'
    best_checkpoint: Optional[Path] = None
    last_checkpoint: Optional[Path] = None
    merged_model: Optional[Path] = None          # loads with plain ultralytics.YOLO / timm
    adapter_dir: Optional[Path] = None           # safetensors + adapter config, LoRA runs only
    metrics: dict = field(default_factory=dict)  # final metrics, flat names
    per_class: dict = field(default_factory=dict)  # class name -> {metric: value}
    params: dict = field(default_factory=dict)   # {'trainable': int, 'total': int}
    base_model_source: str = ""                  # which base was used, in words
    epochs_done: int = 0
