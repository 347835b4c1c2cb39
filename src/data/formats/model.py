"""The in-memory form every reader produces and every writer consumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from math import isfinite
from pathlib import Path

from src.data.geometry import Box, Polygon
from src.db.classes import class_name_problem
from src.errors import DatasetError

SPLIT_NAMES = ("train", "val", "test")
_MAX_SIDE = 1_000_000        # pixels; no camera comes near, a typo or an attack does


@dataclass
class LabeledShape:
    """A box or polygon of class `label`; pixels, or 0..1 of the image when `normalized`."""
    label: str
    shape: Box | Polygon
    normalized: bool = False
    annotation_id: int | None = None

    def to_pixels(self, width: int, height: int) -> "LabeledShape":
        if not self.normalized:
            return self
        if isinstance(self.shape, Box):
            b = self.shape
            shape = Box(b.x1 * width, b.y1 * height, b.x2 * width, b.y2 * height)
        else:
            shape = Polygon(tuple((x * width, y * height) for x, y in self.shape.points))
        return LabeledShape(self.label, shape, False, self.annotation_id)


@dataclass
class LabeledImage:
    """An image file with its shapes and frame tags; size None = read it from the file."""
    path: Path
    shapes: list[LabeledShape] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    split: str = "train"
    tags: list[str] = field(default_factory=list)
    frame_id: int | None = None
    name: str | None = None          # file name to export under (unique in the export)

    @property
    def export_name(self) -> str:
        return self.name or self.path.name


@dataclass
class LabeledSet:
    """What a reader found: images and the class names in index order. `subsets`: the
    subset names of a dataset read from several annotation files or split folders (each
    image's `split`); empty when the images' split is only the writer's default."""
    images: list[LabeledImage]
    classes: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    subsets: list[str] = field(default_factory=list)


def number(value, where: str, path: Path, *, line: int | None = None) -> float:
    """`value` as a finite float, or a DatasetError naming the file and place."""
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):   # OverflowError: an int beyond 1e308
        result = None
    if result is None or not isfinite(result) or isinstance(value, bool):
        if line is not None:
            raise DatasetError(f"line {line}: {where}: expected a number, got {_short(value)}",
                               path=path)
        raise DatasetError(f"expected a number, got {_short(value)}", path=path, field=where)
    return result


def image_size(value: float, where: str, path: Path) -> int:
    """A width or height read by `number`, as the whole pixel count it must be."""
    if not 1 <= value <= _MAX_SIDE or value != int(value):
        raise DatasetError(f"expected a whole number of pixels 1..{_MAX_SIDE}, got "
                           f"{_short(value)}", path=path, field=where)
    return int(value)


def class_name(value, where: str, path: Path) -> str:
    """`value` as a class name (stripped), or a DatasetError naming the file and place."""
    if not isinstance(value, str):
        raise DatasetError(f"expected a class name, got {_short(value)}", path=path,
                           field=where)
    name = value.strip()
    problem = class_name_problem(name)
    if problem:
        raise DatasetError(problem, path=path, field=where, hint="rename the class")
    return name


def _short(value) -> str:
    """repr() of a value for a one-line message: a 5000-digit number is cut short."""
    try:
        text = repr(value)
    except ValueError:                  # an int too large to print (Python's 4300 digits)
        text = f"a {type(value).__name__} too large to print"
    return text if len(text) <= 60 else text[:57] + "..."
