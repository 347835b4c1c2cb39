"""Annotations: boxes, polygons and frame tags. Every call commits at once."""
from __future__ import annotations

import json
import sqlite3

from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import ANNOTATION_KINDS, ANNOTATION_STATUSES, Annotation
from src.errors import AnnotationError

_COLUMNS = ("id, frame_id, class_id, kind, geometry, source, confidence, status,"
            " created_at, updated_at")
_JSON = {"geometry": "geometry"}
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _check(ann: Annotation) -> None:
    if ann.kind not in ANNOTATION_KINDS:
        raise AnnotationError(f"unknown annotation kind '{ann.kind}'", field="kind",
                              hint=f"use one of {', '.join(ANNOTATION_KINDS)}")
    if ann.status not in ANNOTATION_STATUSES:
        raise AnnotationError(f"unknown status '{ann.status}'", field="status",
                              hint=f"use one of {', '.join(ANNOTATION_STATUSES)}")
    g = ann.geometry
    if ann.kind == "box" and not (isinstance(g, (list, tuple)) and len(g) == 4):
        raise AnnotationError(f"a box needs [x1, y1, x2, y2], got {g!r}", field="geometry")
    if ann.kind == "polygon" and not (isinstance(g, (list, tuple))
                                      and all(len(p) == 2 for p in g)):
        raise AnnotationError(f"a polygon needs [[x, y], ...], got {g!r}", field="geometry")
    if ann.kind == "tag" and g is not None:
        raise AnnotationError("a tag has no geometry", field="geometry")


def _geometry_json(ann: Annotation) -> str | None:
    if ann.geometry is None:
        return None
    if ann.kind == "box":
        return dumps([float(v) for v in ann.geometry])
    return dumps([[float(x), float(y)] for x, y in ann.geometry])


def add_annotation(conn: sqlite3.Connection, ann: Annotation) -> Annotation:
    """Insert one annotation (keeping `ann.id` if given, so an undo restores the same id)."""
    return add_annotations(conn, [ann])[0]


def add_annotations(conn: sqlite3.Connection, anns: list[Annotation]) -> list[Annotation]:
    """Insert several annotations in one transaction; all or nothing."""
    for ann in anns:
        _check(ann)
    ids = []
    with transaction(conn):
        for ann in anns:
            try:
                cur = conn.execute(
                    "INSERT INTO annotations (id, frame_id, class_id, kind, geometry, source,"
                    " confidence, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ann.id, ann.frame_id, ann.class_id, ann.kind, _geometry_json(ann),
                     ann.source, ann.confidence, ann.status))
            except sqlite3.IntegrityError as exc:
                raise AnnotationError(f"annotation refused by the store ({exc})",
                                      hint="check its frame, class, source and confidence") from exc
            ids.append(cur.lastrowid)
    return get_annotations(conn, ids)


def get_annotation(conn: sqlite3.Connection, ann_id: int) -> Annotation | None:
    rows = get_annotations(conn, [ann_id])
    return rows[0] if rows else None


def get_annotations(conn: sqlite3.Connection, ids: list[int]) -> list[Annotation]:
    by_id = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for ann in select(conn, Annotation,
                          f"SELECT {_COLUMNS} FROM annotations WHERE id IN ({marks})",
                          tuple(chunk), _JSON):
            by_id[ann.id] = ann
    return [by_id[i] for i in ids if i in by_id]


def list_annotations(conn: sqlite3.Connection, frame_id: int | None = None, *,
                     status: str | None = None, class_id: int | None = None) -> list[Annotation]:
    where, params = [], []
    if class_id is not None:
        where.append("class_id = ?")
        params.append(class_id)
    if frame_id is not None:
        where.append("frame_id = ?")
        params.append(frame_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = f"SELECT {_COLUMNS} FROM annotations"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return select(conn, Annotation, sql + " ORDER BY frame_id, id", tuple(params), _JSON)


def update_annotation(conn: sqlite3.Connection, ann: Annotation) -> Annotation:
    """Store a changed geometry, class, status or confidence of an existing annotation."""
    _check(ann)
    with transaction(conn):
        cur = conn.execute(
            f"UPDATE annotations SET class_id = ?, kind = ?, geometry = ?, source = ?,"
            f" confidence = ?, status = ?, updated_at = {_NOW} WHERE id = ?",
            (ann.class_id, ann.kind, _geometry_json(ann), ann.source, ann.confidence,
             ann.status, ann.id))
        if cur.rowcount != 1:
            raise AnnotationError(f"no annotation with id {ann.id}", field="id")
    return get_annotation(conn, ann.id)


def delete_annotations(conn: sqlite3.Connection, ids: list[int]) -> None:
    with transaction(conn):
        conn.executemany("DELETE FROM annotations WHERE id = ?", [(i,) for i in ids])


def set_status(conn: sqlite3.Connection, ids: list[int], status: str) -> None:
    """Accept (or re-propose) model proposals, in one transaction."""
    if status not in ANNOTATION_STATUSES:
        raise AnnotationError(f"unknown status '{status}'", field="status")
    with transaction(conn):
        conn.executemany(f"UPDATE annotations SET status = ?, updated_at = {_NOW} WHERE id = ?",
                         [(status, i) for i in ids])


def count_annotations(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]


def counts_by_class_name(conn: sqlite3.Connection) -> dict[str, int]:
    """Class name -> annotation count, every class listed (0 when unused)."""
    rows = conn.execute(
        "SELECT c.name, COUNT(a.id) FROM label_classes c LEFT JOIN annotations a"
        " ON a.class_id = c.id GROUP BY c.id ORDER BY c.id").fetchall()
    return dict(rows)


def iter_annotations(conn: sqlite3.Connection, *, status: str | None = None):
    """Every annotation (optionally of one status) in id order, built without the generic
    row mapper: dataset builds read tens of thousands at once."""
    sql = f"SELECT {_COLUMNS} FROM annotations"
    params: tuple = ()
    if status is not None:
        sql += " WHERE status = ?"
        params = (status,)
    loads = json.loads
    for row in conn.execute(sql + " ORDER BY id", params):
        yield Annotation(frame_id=row[1], class_id=row[2], kind=row[3],
                         geometry=loads(row[4]) if row[4] is not None else None,
                         source=row[5], confidence=row[6], status=row[7], id=row[0],
                         created_at=row[8], updated_at=row[9])


def frames_labelled_since(conn: sqlite3.Connection, timestamp: str) -> set[int]:
    """Frames with an accepted annotation created or changed after `timestamp` (the store's
    UTC ISO format, e.g. a dataset's created_at)."""
    return {row[0] for row in conn.execute(
        "SELECT DISTINCT frame_id FROM annotations WHERE status = 'accepted'"
        " AND (created_at > ? OR updated_at > ?)", (timestamp, timestamp))}
