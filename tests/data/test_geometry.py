"""Geometry conversions (Hypothesis properties) and validation."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from src.data.geometry import (Box, Polygon, box_to_coco, box_to_yolo, clip_box, clip_polygon,
                               coco_to_box, is_self_intersecting, polygon_to_yolo,
                               validate_annotations, yolo_to_box, yolo_to_polygon)
from src.db.records import Annotation

sizes = st.integers(min_value=1, max_value=8192)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def image_and_box(draw):
    w, h = draw(sizes), draw(sizes)
    xs = sorted([draw(st.floats(0, w)), draw(st.floats(0, w))])
    ys = sorted([draw(st.floats(0, h)), draw(st.floats(0, h))])
    return w, h, Box(xs[0], ys[0], xs[1], ys[1])


@given(image_and_box())
def test_box_yolo_round_trip(data):
    w, h, box = data
    back = yolo_to_box(*box_to_yolo(box, w, h), w, h)
    for a, b in zip(box.to_list(), back.to_list()):
        assert abs(a - b) <= 1e-6 * max(w, h)


@given(sizes, sizes, st.tuples(unit, unit, unit, unit))
def test_yolo_box_round_trip_normalized(w, h, yolo):
    cx, cy, bw, bh = yolo
    again = box_to_yolo(yolo_to_box(cx, cy, bw, bh, w, h), w, h)
    assert all(abs(a - b) <= 1e-6 for a, b in zip(yolo, again))


@given(sizes, sizes, st.lists(st.tuples(unit, unit), min_size=3, max_size=30))
def test_polygon_yolo_round_trip(w, h, norm_points):
    values = [v for p in norm_points for v in p]
    again = polygon_to_yolo(yolo_to_polygon(values, w, h), w, h)
    assert len(again) == len(values)
    assert all(abs(a - b) <= 1e-6 for a, b in zip(values, again))


@given(image_and_box())
def test_coco_round_trip(data):
    _, _, box = data
    back = coco_to_box(box_to_coco(box))
    assert all(abs(a - b) <= 1e-6 for a, b in zip(box.to_list(), back.to_list()))


@given(st.floats(-500, 500), st.floats(-500, 500), st.floats(-500, 500), st.floats(-500, 500))
def test_clip_box_stays_inside(a, b, c, d):
    box = clip_box(Box.from_corners((a, b), (c, d)), 320, 240)
    assert 0 <= box.x1 <= box.x2 <= 320 and 0 <= box.y1 <= box.y2 <= 240


@given(st.lists(st.tuples(st.floats(-200, 500), st.floats(-200, 500)), min_size=3, max_size=12))
def test_clip_polygon_stays_inside(points):
    clipped = clip_polygon(Polygon.of(points), 320, 240)
    assert all(-1e-9 <= x <= 320 + 1e-9 and -1e-9 <= y <= 240 + 1e-9 for x, y in clipped.points)


def test_clip_polygon_keeps_inside_part():
    square = Polygon.of([(-10, -10), (50, -10), (50, 50), (-10, 50)])
    assert clip_polygon(square, 100, 100).bbox() == Box(0, 0, 50, 50)


def test_self_intersection():
    assert is_self_intersecting(Polygon.of([(0, 0), (10, 10), (10, 0), (0, 10)]))
    assert not is_self_intersecting(Polygon.of([(0, 0), (10, 0), (10, 10), (0, 10)]))


def test_validation_reports_every_violation():
    anns = [
        Annotation(1, 1, "box", [10, 10, 20, 20]),             # fine
        Annotation(1, 1, "box", [-5, 10, 20, 300]),            # outside
        Annotation(1, 1, "box", [10, 10, 10, 20]),             # zero area
        Annotation(1, 1, "polygon", [[0, 0], [5, 5]]),          # too few points
        Annotation(1, 1, "polygon", [[0, 0], [10, 10], [10, 0], [0, 10]]),  # bow tie
        Annotation(1, 9, "tag"),                                # unknown class
    ]
    problems = validate_annotations(anns, (100, 100), known_class_ids=[1])
    assert [p.index for p in problems] == [1, 2, 3, 4, 5]
    assert "outside" in problems[0].message
    assert "zero or negative area" in problems[1].message
    assert "needs at least 3" in problems[2].message
    assert "self-intersecting" in problems[3].message
    assert problems[4].field == "class_id"
