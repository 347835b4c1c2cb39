"""Prompts and masks in original-frame pixels, and the letterbox that maps them to the
model's square input (ultralytics' SAM predictors: resize the long side, pad right/bottom)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from src.errors import AnnotationError


@dataclass(frozen=True)
class PointPrompt:
    x: float
    y: float
    positive: bool = True


@dataclass
class Prompt:
    """Points (positive/negative) and an optional box [x1, y1, x2, y2], original pixels."""
    points: list[PointPrompt] = field(default_factory=list)
    box: list[float] | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def with_point(self, x: float, y: float, positive: bool = True) -> "Prompt":
        return Prompt(self.points + [PointPrompt(float(x), float(y), positive)], self.box)

    def to_dict(self) -> dict:
        return {"points": [[p.x, p.y, int(p.positive)] for p in self.points], "box": self.box}

    @classmethod
    def from_dict(cls, data: dict) -> "Prompt":
        return cls([PointPrompt(x, y, bool(pos)) for x, y, pos in data.get("points", [])],
                   data.get("box"))


@dataclass(frozen=True)
class Letterbox:
    """How an original frame (height, width) sits in the model's square input."""
    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.height, self.width)

    @property
    def inner(self) -> tuple[int, int]:
        """(height, width) of the resized frame inside the padded square."""
        return (max(1, round(self.height * self.scale)), max(1, round(self.width * self.scale)))


@dataclass
class MaskCandidate:
    """One candidate mask (bool HxW, original pixels) with the decoder's predicted IoU."""
    mask: np.ndarray
    iou: float

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def check_prompt(prompt: Prompt, height: int, width: int) -> None:
    """Reject prompts outside the frame, naming the value (the CLI exits 2 on this)."""
    if prompt.empty:
        raise AnnotationError("a prompt needs at least one point or a box",
                              field="--point", hint="pass --point x,y or --box x1,y1,x2,y2")
    for p in prompt.points:
        if not (0 <= p.x < width and 0 <= p.y < height):
            raise AnnotationError(f"point {p.x:g},{p.y:g} is outside the {width}x{height} frame",
                                  field="--point", hint="use pixel coordinates of the frame")
    if prompt.box is not None:
        x1, y1, x2, y2 = prompt.box
        if not (x2 > x1 and y2 > y1):
            raise AnnotationError(f"box {prompt.box} is empty", field="--box",
                                  hint="give x1,y1,x2,y2 with x2 > x1 and y2 > y1")
