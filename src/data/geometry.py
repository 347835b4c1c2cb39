"""Annotation geometry in original-frame pixels, and pure conversions to file formats.

Pixel convention: continuous coordinates, (0, 0) is the top-left corner of the image and
(w, h) its bottom-right corner, so a box covering the whole image is (0, 0, w, h).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    @classmethod
    def from_corners(cls, a: Point, b: Point) -> "Box":
        """The box spanned by two corners given in any order (a mouse drag)."""
        return cls(min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]

    @classmethod
    def of(cls, points: Iterable[Sequence[float]]) -> "Polygon":
        return cls(tuple((float(x), float(y)) for x, y in points))

    def bbox(self) -> Box:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return Box(min(xs), min(ys), max(xs), max(ys))

    @property
    def area(self) -> float:
        """Unsigned shoelace area."""
        pts = self.points
        s = sum(pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1]
                for i in range(len(pts)))
        return abs(s) / 2.0

    def to_list(self) -> list[list[float]]:
        return [[x, y] for x, y in self.points]


Shape = Box | Polygon


# ---- conversions (pure) -------------------------------------------------------------

def box_to_yolo(box: Box, img_w: float, img_h: float) -> tuple[float, float, float, float]:
    """Pixels -> YOLO normalized (cx, cy, w, h)."""
    return ((box.x1 + box.x2) / 2 / img_w, (box.y1 + box.y2) / 2 / img_h,
            box.width / img_w, box.height / img_h)


def yolo_to_box(cx: float, cy: float, bw: float, bh: float, img_w: float, img_h: float) -> Box:
    """YOLO normalized (cx, cy, w, h) -> pixels."""
    return Box((cx - bw / 2) * img_w, (cy - bh / 2) * img_h,
               (cx + bw / 2) * img_w, (cy + bh / 2) * img_h)


def polygon_to_yolo(poly: Polygon, img_w: float, img_h: float) -> list[float]:
    """Pixels -> YOLO segmentation values x1 y1 x2 y2 ... normalized."""
    return [v for x, y in poly.points for v in (x / img_w, y / img_h)]


def yolo_to_polygon(values: Sequence[float], img_w: float, img_h: float) -> Polygon:
    if len(values) % 2 or len(values) < 6:
        raise ValueError(f"a YOLO polygon needs an even number (>= 6) of values, got {len(values)}")
    return Polygon(tuple((values[i] * img_w, values[i + 1] * img_h)
                         for i in range(0, len(values), 2)))


def box_to_coco(box: Box) -> list[float]:
    """Pixels -> COCO [x, y, w, h]."""
    return [box.x1, box.y1, box.width, box.height]


def coco_to_box(xywh: Sequence[float]) -> Box:
    x, y, w, h = xywh
    return Box(x, y, x + w, y + h)


def shape_of(annotation) -> Optional[Shape]:
    """The Box/Polygon of an Annotation record (None for a tag)."""
    if annotation.kind == "box":
        return Box(*map(float, annotation.geometry))
    if annotation.kind == "polygon":
        return Polygon.of(annotation.geometry)
    return None


# ---- fixes and validation -----------------------------------------------------------

def clip_box(box: Box, img_w: float, img_h: float) -> Box:
    """The part of the box inside the image (may become empty: check its area)."""
    return Box(min(max(box.x1, 0.0), img_w), min(max(box.y1, 0.0), img_h),
               min(max(box.x2, 0.0), img_w), min(max(box.y2, 0.0), img_h))


def clip_polygon(poly: Polygon, img_w: float, img_h: float) -> Polygon:
    """The polygon clipped to the image rectangle (Sutherland–Hodgman)."""
    edges = ((0, 0.0, 1), (0, img_w, -1), (1, 0.0, 1), (1, img_h, -1))
    points = list(poly.points)
    for axis, limit, sign in edges:
        if not points:
            break
        inside = lambda p: (p[axis] - limit) * sign >= 0  # noqa: E731
        out: list[Point] = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_cross(prev, cur, axis, limit))
                out.append(cur)
            elif inside(prev):
                out.append(_cross(prev, cur, axis, limit))
        points = out
    return Polygon(tuple(points))


def _cross(a: Point, b: Point, axis: int, limit: float) -> Point:
    t = (limit - a[axis]) / (b[axis] - a[axis])
    p = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    return (limit, p[1]) if axis == 0 else (p[0], limit)


def is_self_intersecting(poly: Polygon) -> bool:
    """True when two non-adjacent edges of the closed polygon cross or touch."""
    pts = poly.points
    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex
            if _segments_intersect(*edges[i], *edges[j]):
                return True
    return False


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and d1 != 0 and d2 != 0 and ((d3 > 0) != (d4 > 0)) and d3 != 0 and d4 != 0:
        return True
    return ((d1 == 0 and _on_segment(q1, q2, p1)) or (d2 == 0 and _on_segment(q1, q2, p2))
            or (d3 == 0 and _on_segment(p1, p2, q1)) or (d4 == 0 and _on_segment(p1, p2, q2)))


@dataclass(frozen=True)
class Violation:
    """One problem with one annotation; `index` is its position in the validated list."""
    index: int
    annotation_id: Optional[int]
    field: str
    message: str

    def __str__(self) -> str:
        who = f"annotation {self.annotation_id}" if self.annotation_id else f"annotation #{self.index}"
        return f"{who}: {self.field}: {self.message}"


def validate_annotations(annotations: Sequence, image_size: tuple[float, float],
                         known_class_ids: Iterable[int]) -> list[Violation]:
    """Every violation in a set of annotations of one image (none are fixed here)."""
    img_w, img_h = image_size
    known = set(known_class_ids)
    problems: list[Violation] = []
    for i, ann in enumerate(annotations):
        def add(field: str, message: str) -> None:
            problems.append(Violation(i, getattr(ann, "id", None), field, message))
        if ann.class_id not in known:
            add("class_id", f"unknown class {ann.class_id}")
        if ann.kind == "box":
            box = shape_of(ann)
            if box.width <= 0 or box.height <= 0:
                add("geometry", f"box has zero or negative area ({box.width:g} x {box.height:g})")
            if box.x1 < 0 or box.y1 < 0 or box.x2 > img_w or box.y2 > img_h:
                add("geometry", f"box {box.to_list()} lies outside the {img_w:g}x{img_h:g} image")
        elif ann.kind == "polygon":
            poly = shape_of(ann)
            if len(poly.points) < 3:
                add("geometry", f"polygon has {len(poly.points)} point(s), needs at least 3")
                continue
            if is_self_intersecting(poly):
                add("geometry", "polygon is self-intersecting")
            elif poly.area <= 0:
                add("geometry", "polygon has zero area")
            box = poly.bbox()
            if box.x1 < 0 or box.y1 < 0 or box.x2 > img_w or box.y2 > img_h:
                add("geometry", f"polygon lies partly outside the {img_w:g}x{img_h:g} image")
    return problems
