"""Pure geometry for the canvas tools, in image pixels (no Qt).

Boxes are [x1, y1, x2, y2] with x1 <= x2, y1 <= y2; polygons are [[x, y], ...]. Everything
returned is clipped to the image (0..width, 0..height) and rounded to 1/100 px.
"""
from __future__ import annotations

# Box handles, clockwise from the top-left corner: which edges each one drags.
BOX_HANDLES = (("x1", "y1"), (None, "y1"), ("x2", "y1"), ("x2", None),
               ("x2", "y2"), (None, "y2"), ("x1", "y2"), ("x1", None))


def _clamp(value: float, low: float, high: float) -> float:
    return round(min(max(value, low), high), 2)


def box_from_corners(a: tuple[float, float], b: tuple[float, float], width: int,
                     height: int) -> list[float]:
    """The box spanned by two drag points, normalised and clipped to the image."""
    x1, x2 = sorted((_clamp(a[0], 0, width), _clamp(b[0], 0, width)))
    y1, y2 = sorted((_clamp(a[1], 0, height), _clamp(b[1], 0, height)))
    return [x1, y1, x2, y2]


def box_handles(box: list[float]) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = box
    coords = {"x1": x1, "x2": x2, "y1": y1, "y2": y2}
    mid = ((x1 + x2) / 2, (y1 + y2) / 2)
    return [(coords[hx] if hx else mid[0], coords[hy] if hy else mid[1])
            for hx, hy in BOX_HANDLES]


def resize_box(box: list[float], handle: int, point: tuple[float, float], width: int,
               height: int) -> list[float]:
    """Drag handle number `handle` of `box` to `point`."""
    coords = dict(zip(("x1", "y1", "x2", "y2"), box))
    hx, hy = BOX_HANDLES[handle]
    if hx:
        coords[hx] = point[0]
    if hy:
        coords[hy] = point[1]
    return box_from_corners((coords["x1"], coords["y1"]), (coords["x2"], coords["y2"]),
                            width, height)


def move_vertex(points: list[list[float]], index: int, point: tuple[float, float], width: int,
                height: int) -> list[list[float]]:
    moved = [list(p) for p in points]
    moved[index] = [_clamp(point[0], 0, width), _clamp(point[1], 0, height)]
    return moved


def shape_points(kind: str, geometry) -> list[tuple[float, float]]:
    if kind == "box":
        x1, y1, x2, y2 = geometry
        return [(x1, y1), (x2, y2)]
    return [(x, y) for x, y in geometry]


def translate(kind: str, geometry, dx: float, dy: float, width: int, height: int):
    """Move a shape by (dx, dy), limited so that it stays inside the image."""
    points = shape_points(kind, geometry)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    dx = min(max(dx, -min(xs)), width - max(xs))
    dy = min(max(dy, -min(ys)), height - max(ys))
    if kind == "box":
        x1, y1, x2, y2 = geometry
        return [round(x1 + dx, 2), round(y1 + dy, 2), round(x2 + dx, 2), round(y2 + dy, 2)]
    return [[round(x + dx, 2), round(y + dy, 2)] for x, y in geometry]


def polygon_from_clicks(points: list[tuple[float, float]], width: int,
                        height: int) -> list[list[float]]:
    return [[_clamp(x, 0, width), _clamp(y, 0, height)] for x, y in points]


def is_degenerate(kind: str, geometry, min_size: float = 2.0) -> bool:
    """Too small to be a shape anyone meant to draw (a click, not a drag)."""
    points = shape_points(kind, geometry)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if kind == "box":
        return (max(xs) - min(xs)) < min_size or (max(ys) - min(ys)) < min_size
    return len(points) < 3 or (max(xs) - min(xs)) < min_size or (max(ys) - min(ys)) < min_size
