"""Which SAM weights to load, and the sentence that says which file to put where.

Lookup: models/base/<name>.pt → an ultralytics download when online (not YOLO_OFFLINE) →
SamWeightsMissing naming the file and the folder. Untrained weights are used only when the
caller asks for them explicitly (`untrained=True`, the tests and the benchmark).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from src.errors import ModelError

# name -> (weights file, ultralytics builder name, supports tracking with memory)
SAM_MODELS = {
    "sam2_t": ("sam2_t.pt", "build_sam2_t", True),
    "sam2.1_t": ("sam2.1_t.pt", "build_sam2_t", True),
    "sam2_s": ("sam2_s.pt", "build_sam2_s", True),
    "mobile_sam": ("mobile_sam.pt", "build_mobile_sam", False),
}
DEFAULT_MODEL = "sam2_t"


class SamWeightsMissing(ModelError):
    """The SAM weights file is not there and cannot be downloaded."""


@dataclass(frozen=True)
class SamWeights:
    """A model name and the weights file to load (None: untrained, asked for explicitly)."""
    name: str
    path: Path | None

    @property
    def untrained(self) -> bool:
        return self.path is None


def check_model_name(name: str) -> str:
    if name not in SAM_MODELS:
        raise ModelError(f"unknown SAM model {name!r}", field="model",
                         hint=f"use one of {', '.join(SAM_MODELS)}")
    return name


def missing_message(name: str, base_dir: Path) -> str:
    """The exact instruction shown wherever the feature is disabled."""
    return (f"Segment Anything needs {SAM_MODELS[name][0]}: put it in {Path(base_dir)}/ "
            f"(offline, no weights found there)")


def find_weights(name: str, base_dir: Path, *, untrained: bool = False,
                 allow_download: bool | None = None) -> SamWeights:
    """The weights to load for `name`, or SamWeightsMissing with the file and folder."""
    check_model_name(name)
    if untrained:
        return SamWeights(name, None)
    target = Path(base_dir) / SAM_MODELS[name][0]
    if target.is_file():
        return SamWeights(name, target)
    if allow_download is None:
        allow_download = not _offline()
    if allow_download and _download(target):
        return SamWeights(name, target)
    raise SamWeightsMissing(missing_message(name, base_dir), path=target,
                            hint="download it from the ultralytics assets release on a "
                                 "machine that is online and copy it there")


def _offline() -> bool:
    return os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes")


def _download(target: Path) -> bool:
    """Let ultralytics fetch the asset into `target`'s folder; False when it cannot."""
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        target.parent.mkdir(parents=True, exist_ok=True)
        got = Path(attempt_download_asset(str(target)))
    except Exception:   # noqa: BLE001 - any network/asset failure means "not available"
        return False
    return got.is_file()
