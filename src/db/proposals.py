"""Model proposals and the corrections users make to them.

A proposal is an annotation with `source = 'model:<version id>'` and `status = 'proposed'`;
`proposal_details` keeps what the annotations table has no column for (the track id of a
propagated box, the detector's class and confidence when a second stage relabelled it).
`corrections` records what a user did to a model's proposal (accepted, moved/resized,
reclassified, deleted) or added on a frame the model had labelled, for learning from
corrections later. Every function is one transaction.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Optional

from src.db import annotations as annotations_repo
from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import Annotation
from src.errors import AnnotationError

CORRECTION_KINDS = ("accepted", "moved_resized", "reclassified", "deleted", "added")
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass
class ProposalDetail:
    """Extra facts about one proposal (annotation_id is filled in when it is stored)."""
    track_id: Optional[int] = None
    detector_class: Optional[str] = None
    detector_confidence: Optional[float] = None
    annotation_id: Optional[int] = None


@dataclass
class Correction:
    """What a user changed on a model's proposal; before/after are the annotation as dicts."""
    frame_id: int
    model_source: str              # 'model:<version id>'
    kind: str                      # one of CORRECTION_KINDS
    annotation_id: Optional[int] = None
    before: Optional[dict] = None
    after: Optional[dict] = None
    id: Optional[int] = None
    created_at: Optional[str] = None


def replace_proposals(conn: sqlite3.Connection, model_source: str, frame_ids: list[int],
                      anns: list[Annotation],
                      details: list[ProposalDetail | None] | None = None) -> list[Annotation]:
    """Drop `model_source`'s earlier proposals on `frame_ids` and store `anns` instead.

    Accepted annotations (whatever their source) are never touched. A detail's `track_id`
    is the tracker's own number: each distinct one becomes a new track of the project, and
    the details are updated in place to the stored ids. All or nothing.
    """
    _check_source(model_source, anns)
    with transaction(conn):
        conn.executemany("DELETE FROM annotations WHERE frame_id = ? AND source = ?"
                         " AND status = 'proposed'", [(f, model_source) for f in frame_ids])
        return _insert(conn, model_source, anns, details)


def swap_proposals(conn: sqlite3.Connection, model_source: str, drop_ids: list[int],
                   anns: list[Annotation],
                   details: list[ProposalDetail | None] | None = None) -> list[Annotation]:
    """Drop the proposals `drop_ids` of `model_source` and store `anns` instead, leaving the
    model's other proposals on those frames as they are (replace_proposals drops them all).
    Track ids as in replace_proposals. All or nothing."""
    _check_source(model_source, anns)
    with transaction(conn):
        conn.executemany("DELETE FROM annotations WHERE id = ? AND source = ?"
                         " AND status = 'proposed'", [(i, model_source) for i in drop_ids])
        return _insert(conn, model_source, anns, details)


def _check_source(model_source: str, anns: list[Annotation]) -> None:
    if any(a.source != model_source or a.status != "proposed" for a in anns):
        raise AnnotationError("proposals must be 'proposed' and from the model replacing them",
                              field="source", hint=f"use source={model_source!r}")


def _insert(conn: sqlite3.Connection, model_source: str, anns: list[Annotation],
            details: list[ProposalDetail | None] | None) -> list[Annotation]:
    """Store proposals with their details (inside the caller's transaction)."""
    details = details or [None] * len(anns)
    stored = annotations_repo.add_annotations(conn, anns) if anns else []
    _new_tracks(conn, model_source, [d for d in details if d is not None])
    rows = [(a.id, d.track_id, d.detector_class, d.detector_confidence)
            for a, d in zip(stored, details) if d is not None]
    conn.executemany("INSERT INTO proposal_details (annotation_id, track_id, detector_class,"
                     " detector_confidence) VALUES (?, ?, ?, ?)", rows)
    return stored


def get_details(conn: sqlite3.Connection, ann_ids: list[int]) -> dict[int, ProposalDetail]:
    out = {}
    for start in range(0, len(ann_ids), 500):
        chunk = ann_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for d in select(conn, ProposalDetail, "SELECT annotation_id, track_id, detector_class,"
                        f" detector_confidence FROM proposal_details WHERE annotation_id IN"
                        f" ({marks})", tuple(chunk)):
            out[d.annotation_id] = d
    return out


def _new_tracks(conn: sqlite3.Connection, model_source: str,
                details: list[ProposalDetail]) -> None:
    ids: dict[int, int] = {}
    for d in details:
        if d.track_id is not None and d.track_id not in ids:
            ids[d.track_id] = conn.execute("INSERT INTO tracks (model_source) VALUES (?)",
                                           (model_source,)).lastrowid
        if d.track_id is not None:
            d.track_id = ids[d.track_id]


def find_proposals(conn: sqlite3.Connection, *, source_id: int | None = None,
                   first: int | None = None, last: int | None = None,
                   track_id: int | None = None, model_source: str | None = None,
                   status: str = "proposed") -> list[int]:
    """Ids of annotations (proposals by default) matching every filter given."""
    where = ["a.status = ?"]
    params: list = [status]
    for clause, value in (("f.source_id = ?", source_id), ("f.frame_index >= ?", first),
                          ("f.frame_index <= ?", last), ("d.track_id = ?", track_id),
                          ("a.source = ?", model_source)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if model_source is None:
        where.append("a.source LIKE 'model:%'")
    sql = ("SELECT a.id FROM annotations a JOIN frames f ON f.id = a.frame_id"
           " LEFT JOIN proposal_details d ON d.annotation_id = a.id WHERE "
           + " AND ".join(where) + " ORDER BY f.source_id, f.frame_index, a.id")
    return [row[0] for row in conn.execute(sql, params)]


def accept(conn: sqlite3.Connection, ids: list[int]) -> int:
    """Proposals become accepted annotations; each acceptance is recorded. Returns how many."""
    with transaction(conn):
        anns = _proposed(conn, ids)
        conn.executemany(f"UPDATE annotations SET status = 'accepted', updated_at = {_NOW}"
                         " WHERE id = ?", [(a.id,) for a in anns])
        add_corrections(conn, [Correction(a.frame_id, a.source, "accepted", a.id,
                                          annotation_dict(a), None) for a in anns])
    return len(anns)


def reject(conn: sqlite3.Connection, ids: list[int]) -> int:
    """Proposals are deleted; each rejection is recorded as 'deleted'. Returns how many."""
    with transaction(conn):
        anns = _proposed(conn, ids)
        conn.executemany("DELETE FROM annotations WHERE id = ?", [(a.id,) for a in anns])
        add_corrections(conn, corrections_for_deletion(anns))
    return len(anns)


def _proposed(conn: sqlite3.Connection, ids: list[int]) -> list[Annotation]:
    return [a for a in annotations_repo.get_annotations(conn, ids) if a.status == "proposed"]


def add_corrections(conn: sqlite3.Connection, corrections: list[Correction]) -> None:
    for c in corrections:
        if c.kind not in CORRECTION_KINDS:
            raise AnnotationError(f"unknown correction kind '{c.kind}'", field="kind",
                                  hint=f"use one of {', '.join(CORRECTION_KINDS)}")
    with transaction(conn):
        conn.executemany(
            "INSERT INTO corrections (annotation_id, frame_id, model_source, kind, before_json,"
            " after_json) VALUES (?, ?, ?, ?, ?, ?)",
            [(c.annotation_id, c.frame_id, c.model_source, c.kind,
              dumps(c.before) if c.before is not None else None,
              dumps(c.after) if c.after is not None else None) for c in corrections])


def list_corrections(conn: sqlite3.Connection, model_source: str | None = None) -> list[Correction]:
    sql = ("SELECT id, annotation_id, frame_id, model_source, kind, before_json, after_json,"
           " created_at FROM corrections")
    params: tuple = ()
    if model_source is not None:
        sql += " WHERE model_source = ?"
        params = (model_source,)
    return select(conn, Correction, sql + " ORDER BY id", params,
                  {"before_json": "before", "after_json": "after"})


def annotation_dict(ann: Annotation) -> dict:
    return {"class_id": ann.class_id, "kind": ann.kind, "geometry": ann.geometry,
            "confidence": ann.confidence, "source": ann.source, "status": ann.status}


def corrections_for_edit(before: Annotation, after: Annotation) -> list[Correction]:
    """What a user's edit of a model's proposal changed: 'moved_resized' and/or
    'reclassified', or 'accepted' when it was accepted as it was. Nothing for other edits."""
    if not before.source.startswith("model:") or before.status != "proposed":
        return []
    kinds = []
    if _geometry_changed(before.geometry, after.geometry):
        kinds.append("moved_resized")
    if before.class_id != after.class_id:
        kinds.append("reclassified")
    if not kinds and after.status == "accepted":
        kinds.append("accepted")
    return [Correction(before.frame_id, before.source, k, before.id, annotation_dict(before),
                       annotation_dict(after)) for k in kinds]


def corrections_for_deletion(anns: list[Annotation]) -> list[Correction]:
    """A user deleting model proposals: one 'deleted' correction each (others: none)."""
    return [Correction(a.frame_id, a.source, "deleted", a.id, annotation_dict(a), None)
            for a in anns if a.source.startswith("model:") and a.status == "proposed"]


def save_edit(conn: sqlite3.Connection, before: Annotation, after: Annotation) -> Annotation:
    """Store a user's edit of an annotation; editing a proposal accepts it and records the
    corrections. One transaction."""
    if before.source.startswith("model:") and before.status == "proposed":
        after.status = "accepted"
    with transaction(conn):
        stored = annotations_repo.update_annotation(conn, after)
        add_corrections(conn, corrections_for_edit(before, stored))
    return stored


def add_by_user(conn: sqlite3.Connection, ann: Annotation) -> Annotation:
    """Store an annotation a user drew; on a frame a model proposed on, it is a correction
    ('added': the model missed it) for each such model."""
    with transaction(conn):
        stored = annotations_repo.add_annotation(conn, ann)
        models = [r[0] for r in conn.execute(
            "SELECT DISTINCT source FROM annotations WHERE frame_id = ? AND source LIKE"
            " 'model:%' AND id != ?", (stored.frame_id, stored.id))]
        add_corrections(conn, [Correction(stored.frame_id, m, "added", stored.id, None,
                                          annotation_dict(stored)) for m in models])
    return stored


def _geometry_changed(a, b, tolerance: float = 0.5) -> bool:
    """More than half a pixel anywhere (a redraw that lands on the same pixels is no move)."""
    if a is None or b is None:
        return a is not b
    flat_a, flat_b = _flatten(a), _flatten(b)
    return len(flat_a) != len(flat_b) or any(abs(x - y) > tolerance
                                             for x, y in zip(flat_a, flat_b))


def _flatten(geometry) -> list[float]:
    out: list[float] = []
    for v in geometry:
        out.extend(_flatten(v) if isinstance(v, (list, tuple)) else [float(v)])
    return out
