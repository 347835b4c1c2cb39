"""Tracked masks → `proposed` polygons of the project (one track per tracked object).

Each tracked object gets its own model source, `model:<sam model>/object<id>`, so that
re-tracking one object replaces only its own earlier proposals (replace_proposals drops a
source's proposals on the frames it reruns) and never another object's or an accepted one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from src.data.capture import capture_array
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.db.project import Project
from src.db.records import Annotation, MediaSource
from src.training.sam.polygon import DEFAULT_TOLERANCE, mask_to_polygon
from src.training.sam.tracker import TrackedMask


def track_source(model_name: str, object_id: int) -> str:
    return f"model:{model_name}/object{object_id}"


@dataclass
class StoredTrack:
    frames: int = 0
    proposals: int = 0
    captured: int = 0
    annotation_ids: list[int] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)


def store_tracked(project: Project, source: MediaSource, class_id: int, object_id: int,
                  model_name: str, masks: list[TrackedMask],
                  read_image: Callable[[int], np.ndarray], *,
                  tolerance: float = DEFAULT_TOLERANCE) -> StoredTrack:
    """Replace this object's proposals on the frames of `masks` with the new polygons
    (frames where SAM 2 says the object is absent get none). One transaction. The caller
    leaves out the frame the track started from (its annotation is the user's)."""
    out = StoredTrack()
    frame_ids, anns, details = [], [], []
    model_source = track_source(model_name, object_id)
    for tracked in masks:
        frame = frames_repo.get_frame_at(project.conn, source.id, tracked.frame_index)
        if frame is None:
            frame = capture_array(project, source, tracked.frame_index,
                                  read_image(tracked.frame_index))
            out.captured += 1
        frame_ids.append(frame.id)
        polygon = mask_to_polygon(tracked.mask, tolerance) if tracked.present else None
        if polygon is None:
            continue
        anns.append(Annotation(frame.id, class_id, "polygon", polygon, model_source,
                               tracked.confidence, "proposed"))
        details.append(proposals_repo.ProposalDetail(track_id=object_id))
    stored = proposals_repo.replace_proposals(project.conn, model_source, frame_ids, anns,
                                              details)
    out.frames, out.proposals = len(frame_ids), len(stored)
    out.annotation_ids = [a.id for a in stored]
    out.confidences = [a.confidence for a in stored]
    return out
