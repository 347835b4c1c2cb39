"""DatasetSpec: everything that decides what a dataset snapshot contains."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.data.datasets.naming import check_dataset_name
from src.errors import DatasetError

TASKS = ("detect", "segment", "classify", "crops")
GROUP_BY = ("block", "source", "none")
SPLITS = ("train", "val", "test")
# Annotation kinds each task can use, and the default; a detect/crops polygon becomes its box.
TASK_KINDS = {"detect": ("box", "polygon"), "crops": ("box", "polygon"),
              "segment": ("polygon",), "classify": ("tag",)}
SEGMENT_BOXES = ("skip", "reject")


@dataclass
class AugmentSpec:
    """Minority-class oversampling: `factor` copies per training item of a class, augmented."""
    pipeline: str = "standard"
    factors: dict[str, int] = field(default_factory=dict)


@dataclass
class DatasetSpec:
    name: str = field(metadata={"help": "dataset name, becomes datasets/<name>/"})
    task: str = field(default="detect", metadata={"help": "detect | segment | classify | crops"})
    sources: list[Path] = field(default_factory=list, metadata={
        "help": "project folders to draw from (classes matched by name); empty = this project"})
    split: tuple[float, float, float] = field(default=(0.7, 0.2, 0.1), metadata={
        "help": "train, val, test ratios; each in [0, 1], train > 0, summing to 1"})
    seed: int = field(default=42, metadata={"help": "seed of the split and augmentation"})
    group_by: str = field(default="block", metadata={
        "help": "block: K consecutive frames of a source stay together; source: a whole video"
                " stays in one split; none: every frame on its own"})
    block_size: int = field(default=10, metadata={"help": "K for group_by=block"})
    classes: list[str] | None = field(default=None, metadata={
        "help": "class names to keep (before mapping); None keeps all"})
    drop: list[str] = field(default_factory=list, metadata={"help": "class names to leave out"})
    mapping: dict[str, str] = field(default_factory=dict, metadata={
        "help": "source class -> dataset class; several sources may merge into one"})
    min_per_class: int = field(default=1, metadata={
        "help": "fewest instances of each class in each split with a ratio > 0"})
    background: float = field(default=0.0, metadata={
        "help": "add frames without annotations, at most this fraction of the labelled frames"})
    crop_padding: float = field(default=0.1, metadata={
        "help": "crops: padding on each side, as a fraction of the box width/height"})
    crop_min_size: int = field(default=8, metadata={
        "help": "crops: boxes narrower or shorter than this many pixels are skipped"})
    augment: AugmentSpec | None = field(default=None, metadata={
        "help": "oversample classes in the training split with augmented copies"})
    frames: list[int] | None = field(default=None, metadata={
        "help": "ids of this project's frames to draw from (a gallery selection or filter);"
                " None takes them all. Frames excluded from datasets are always left out"})
    kinds: list[str] | None = field(default=None, metadata={
        "help": "annotation kinds to use; detect/crops: box and/or polygon (a polygon becomes"
                " its bounding box); segment: polygon; classify: tag. None: all the task can"
                " use"})
    segment_boxes: str = field(default="skip", metadata={
        "help": "segment: boxes cannot be masks; skip them (counted in the report) or reject"
                " the build naming a frame that has one"})

    def __post_init__(self) -> None:
        check_dataset_name(self.name)
        if self.task not in TASKS:
            raise DatasetError(f"unknown task '{self.task}'", field="task",
                               hint=f"use one of {', '.join(TASKS)}")
        if self.group_by not in GROUP_BY:
            raise DatasetError(f"unknown grouping '{self.group_by}'", field="group_by",
                               hint=f"use one of {', '.join(GROUP_BY)}")
        self.split = validate_split(self.split)
        _check_int("block_size", self.block_size, 1)
        _check_int("min_per_class", self.min_per_class, 0)
        _check_int("crop_min_size", self.crop_min_size, 1)
        if not (0 <= self.background <= 100):
            raise DatasetError(f"background fraction {self.background} out of range",
                               field="background", hint="use a value from 0 to 100, e.g. 0.1")
        if self.crop_padding < 0 or self.crop_padding > 2:
            raise DatasetError(f"crop padding {self.crop_padding} out of range",
                               field="crop_padding", hint="use a fraction from 0 to 2")
        self.sources = [Path(p) for p in self.sources]
        if self.augment is not None:
            for name, factor in self.augment.factors.items():
                _check_int(f"augment factor of '{name}'", factor, 1)
        self.kinds = _check_kinds(self.task, self.kinds)
        if self.segment_boxes not in SEGMENT_BOXES:
            raise DatasetError(f"unknown segment_boxes '{self.segment_boxes}'",
                               field="segment_boxes", hint="use skip or reject")
        if self.frames is not None:
            self.frames = sorted({int(f) for f in self.frames})
            if not self.frames:
                raise DatasetError("no frame selected", field="frames",
                                   hint="select frames in the gallery, or take all frames")

    @property
    def used_kinds(self) -> tuple[str, ...]:
        return tuple(self.kinds) if self.kinds is not None else TASK_KINDS[self.task]

    @classmethod
    def from_config(cls, config: dict) -> "DatasetSpec":
        """The spec a recorded config (to_config) describes, e.g. to build a new version."""
        values = dict(config)
        augment = values.pop("augment", None)
        if isinstance(augment, dict):
            augment = AugmentSpec(augment.get("pipeline", "standard"),
                                  dict(augment.get("factors", {})))
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in values.items() if k in known}
        if "split" in values:
            values["split"] = tuple(values["split"])
        return cls(**values, augment=augment)

    def to_config(self) -> dict:
        """JSON-friendly form, recorded in the manifest and the store."""
        config = asdict(self)
        config["sources"] = [str(p) for p in self.sources]
        config["split"] = list(self.split)
        return config


def _check_kinds(task: str, kinds) -> list[str] | None:
    if kinds is None:
        return None
    kinds = list(dict.fromkeys(kinds))
    allowed = TASK_KINDS[task]
    wrong = [k for k in kinds if k not in allowed]
    if wrong or not kinds:
        raise DatasetError(
            f"a {task} dataset cannot use {wrong[0] if wrong else 'no'} annotations",
            field="kinds", hint=f"use {' and/or '.join(allowed)}")
    return kinds


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DatasetError(f"{name} must be an integer >= {minimum}, got {value!r}", field=name)


def validate_split(ratios) -> tuple[float, float, float]:
    """Three ratios, each in [0, 1], train > 0, summing to 1 within 1e-6."""
    values = tuple(ratios)
    if len(values) != 3:
        raise DatasetError(f"a split needs three ratios (train, val, test), got {len(values)}",
                           field="split", hint="write e.g. 0.7,0.2,0.1")
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise DatasetError(f"split ratios must be numbers, got {ratios!r}", field="split",
                           hint="write e.g. 0.7,0.2,0.1") from None
    for name, value in zip(SPLITS, values):
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise DatasetError(f"{name} ratio {value} is not in [0, 1]", field="split",
                               hint="write e.g. 0.7,0.2,0.1")
    if values[0] <= 0:
        raise DatasetError("the train ratio must be above 0", field="split",
                           hint="write e.g. 0.7,0.2,0.1")
    if abs(sum(values) - 1) > 1e-6:
        raise DatasetError(f"split ratios sum to {sum(values):g}, not 1", field="split",
                           hint="make train + val + test = 1, e.g. 0.7,0.2,0.1")
    return values


def parse_split(text: str) -> tuple[float, float, float]:
    """'0.7,0.2,0.1' -> validated ratios."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return validate_split(float(p) for p in parts)
    except ValueError:
        raise DatasetError(f"'{text}' is not a list of numbers", field="split",
                           hint="write e.g. 0.7,0.2,0.1") from None


def parse_mapping(text: str) -> dict[str, str]:
    """'a=x,b=x' -> {'a': 'x', 'b': 'x'}."""
    mapping = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise DatasetError(f"'{item}' is not a class mapping", field="map",
                               hint="write OLD=NEW pairs separated by commas, e.g. car=vehicle")
        mapping[source.strip()] = target.strip()
    return mapping


def parse_augment(text: str) -> AugmentSpec:
    """'heavy:rare=20,other=5' -> AugmentSpec('heavy', {'rare': 20, 'other': 5})."""
    pipeline, _, rest = text.partition(":")
    factors = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        name, sep, factor = item.partition("=")
        if not sep or not factor.strip().isdigit() or not name.strip():
            raise DatasetError(f"'{item}' is not CLASS=FACTOR", field="augment",
                               hint="write PIPELINE:CLASS=FACTOR,..., e.g. heavy:triangle=20")
        factors[name.strip()] = int(factor)
    if not pipeline.strip():
        raise DatasetError("no augmentation pipeline named", field="augment",
                           hint="write PIPELINE:CLASS=FACTOR, e.g. heavy:triangle=20")
    return AugmentSpec(pipeline.strip(), factors)


def parse_frame_ids(text: str) -> list[int]:
    """'3,7,10-12' -> [3, 7, 10, 11, 12]."""
    ids: set[int] = set()
    for item in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = item.partition("-")
        if not first.strip().isdigit() or (sep and not last.strip().isdigit()):
            raise DatasetError(f"'{item}' is not a frame id or range", field="frames",
                               hint="write ids and ranges separated by commas, e.g. 3,7,10-12")
        low, high = int(first), int(last) if sep else int(first)
        if high < low or high - low > 10_000_000:
            raise DatasetError(f"'{item}' is not a valid range", field="frames",
                               hint="write LOW-HIGH with LOW <= HIGH, e.g. 10-12")
        ids.update(range(low, high + 1))
    if not ids:
        raise DatasetError("no frame id given", field="frames", hint="e.g. --frames 3,7,10-12")
    return sorted(ids)


def split_names(text: str | None) -> list[str] | None:
    """'a, b' -> ['a', 'b']; None stays None."""
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]
