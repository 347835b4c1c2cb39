"""Project-wide annotation checks and the fixes clipping makes (Qt-free)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from src.data.checks import check_project, clipped
from src.data.geometry import shape_of, validate_annotations
from src.db import annotations as ann_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.records import Annotation, Frame, MediaSource


def _frame(project, index=0, w=64, h=48):
    source = sources_repo.add_source(project.conn, MediaSource(
        "video", "/videos/a.mp4", "a.mp4", fps=25.0, frame_count=100, width=w, height=h))
    return frames_repo.add_frame(project.conn, Frame(source.id, index, f"f/{index}.png", w, h))


def test_every_violation_is_found_and_only_clippable_ones_get_a_fix(project):
    frame = _frame(project)
    car = classes_repo.add_class(project.conn, "car")
    outside, zero, bowtie, fine, poly_out = ann_repo.add_annotations(project.conn, [
        Annotation(frame.id, car.id, "box", [-8, 4, 20, 30]),
        Annotation(frame.id, car.id, "box", [10, 10, 10, 20]),
        Annotation(frame.id, car.id, "polygon", [[0, 0], [20, 20], [20, 0], [0, 20]]),
        Annotation(frame.id, car.id, "box", [1, 1, 5, 5]),
        Annotation(frame.id, car.id, "polygon", [[50, 10], [80, 10], [60, 40]])])
    findings = check_project(project)
    by_ann = {f.annotation.id: f for f in findings}
    assert set(by_ann) == {outside.id, zero.id, bowtie.id, poly_out.id}
    assert by_ann[outside.id].fix.geometry == [0, 4, 20, 30]
    assert by_ann[zero.id].fix is None and by_ann[bowtie.id].fix is None
    fixed_poly = shape_of(by_ann[poly_out.id].fix)
    assert max(x for x, _ in fixed_poly.points) == 64
    assert all(f.frame.id == frame.id for f in findings)


def test_a_clean_project_has_no_findings(project):
    frame = _frame(project)
    car = classes_repo.add_class(project.conn, "car")
    ann_repo.add_annotation(project.conn, Annotation(frame.id, car.id, "box", [1, 2, 30, 40]))
    assert check_project(project) == []


coord = st.floats(-100, 200, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(coord, coord, coord, coord)
def test_a_clipped_box_is_valid_or_no_fix_is_offered(x1, y1, x2, y2):
    ann = Annotation(1, 1, "box", [x1, y1, x2, y2], id=1)
    fix = clipped(ann, 64, 48)
    if fix is not None:
        assert validate_annotations([fix], (64, 48), [1]) == []
        assert fix.geometry != ann.geometry
