"""Check a whole project's annotations (boxes outside the image, zero area, self-intersecting
polygons, unknown classes) and compute the fixes clipping to the image can make. Qt-free: the
GUI's check dialog only lists these findings and stores the fixes through its undo stack."""
from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

from src.data.geometry import (Box, clip_box, clip_polygon, is_self_intersecting, shape_of,
                               validate_annotations)
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db.project import Project
from src.db.records import Annotation, Frame


@dataclass(frozen=True)
class Finding:
    """One violation of one stored annotation, with the frame it is on."""
    frame: Frame
    annotation: Annotation
    field: str
    message: str
    fix: Annotation | None          # the annotation clipped to the image, when that fixes it

    @property
    def fixable(self) -> bool:
        return self.fix is not None


def check_project(project: Project) -> list[Finding]:
    """Every violation of every annotation of the project, frame by frame (source, index)."""
    known = {c.id for c in classes_repo.list_classes(project.conn)}
    by_frame: dict[int, list[Annotation]] = {}
    for ann in annotations_repo.list_annotations(project.conn):
        by_frame.setdefault(ann.frame_id, []).append(ann)
    findings: list[Finding] = []
    for frame in frames_repo.list_frames(project.conn):
        anns = by_frame.get(frame.id, [])
        for v in validate_annotations(anns, (frame.width, frame.height), known):
            ann = anns[v.index]
            fix = clipped(ann, frame.width, frame.height) if v.field == "geometry" else None
            findings.append(Finding(frame, ann, v.field, v.message, fix))
    return findings


def clipped(ann: Annotation, width: float, height: float) -> Annotation | None:
    """A copy of `ann` clipped to the image, or None when clipping does not make it valid
    (it has no area inside the image, is self-intersecting, or was not outside at all)."""
    shape = shape_of(ann)
    if shape is None:
        return None
    if isinstance(shape, Box):
        fixed = clip_box(shape, width, height)
        ok = fixed.width > 0 and fixed.height > 0
    else:
        fixed = clip_polygon(shape, width, height)
        ok = len(fixed.points) >= 3 and fixed.area > 0 and not is_self_intersecting(fixed)
    geometry = fixed.to_list()
    if not ok or geometry == shape.to_list():
        return None
    out = deepcopy(ann)
    out.geometry = geometry
    return out
