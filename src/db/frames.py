"""Captured frames."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from src.db._rows import select
from src.db.connection import transaction
from src.db.records import Frame

_COLUMNS = "id, source_id, frame_index, timestamp_s, image_path, width, height, created_at"


@dataclass
class FrameSummary:
    """A frame with what the gallery shows about it."""
    frame: Frame
    shape_count: int
    class_ids: list[int]


def add_frame(conn: sqlite3.Connection, frame: Frame) -> Frame:
    """Insert a frame; capturing the same (source, index) again returns the existing row."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO frames (source_id, frame_index, timestamp_s, image_path, width, height)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, frame_index) DO NOTHING",
            (frame.source_id, frame.frame_index, frame.timestamp_s, frame.image_path,
             frame.width, frame.height))
    return get_frame_at(conn, frame.source_id, frame.frame_index)


def add_source_frames(conn: sqlite3.Connection, source_id: int,
                      frames: list[Frame]) -> list[Frame]:
    """Insert the frames of a source that has none yet, in one statement (an import holds
    the write lock meanwhile); returns every frame of the source, by index."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO frames (source_id, frame_index, timestamp_s, image_path, width, height)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(source_id, f.frame_index, f.timestamp_s, f.image_path, f.width, f.height)
             for f in frames])
    return list_frames(conn, source_id)


def restore_frames(conn: sqlite3.Connection, frames: list[Frame]) -> None:
    """Re-insert deleted frames under their old ids (undo of a deletion), all or nothing."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO frames (id, source_id, frame_index, timestamp_s, image_path, width, height,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(f.id, f.source_id, f.frame_index, f.timestamp_s, f.image_path, f.width, f.height,
              f.created_at) for f in frames])


def get_frame(conn: sqlite3.Connection, frame_id: int) -> Frame | None:
    rows = select(conn, Frame, f"SELECT {_COLUMNS} FROM frames WHERE id = ?", (frame_id,))
    return rows[0] if rows else None


def get_frame_at(conn: sqlite3.Connection, source_id: int, frame_index: int) -> Frame | None:
    rows = select(conn, Frame,
                  f"SELECT {_COLUMNS} FROM frames WHERE source_id = ? AND frame_index = ?",
                  (source_id, frame_index))
    return rows[0] if rows else None


def list_frames(conn: sqlite3.Connection, source_id: int | None = None) -> list[Frame]:
    if source_id is None:
        return select(conn, Frame, f"SELECT {_COLUMNS} FROM frames ORDER BY source_id, frame_index")
    return select(conn, Frame,
                  f"SELECT {_COLUMNS} FROM frames WHERE source_id = ? ORDER BY frame_index",
                  (source_id,))


def count_frames(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]


def list_frame_summaries(conn: sqlite3.Connection, *, source_id: int | None = None,
                         class_id: int | None = None, unannotated_only: bool = False,
                         frame_ids: list[int] | None = None,
                         limit: int = -1, offset: int = 0) -> list[FrameSummary]:
    """Frames in gallery order with their shape count and classes, filtered in SQL
    (`frame_ids`: only these frames)."""
    where, params = [], []
    if frame_ids is not None:
        where.append(f"f.id IN ({', '.join('?' * len(frame_ids)) or 'NULL'})")
        params.extend(frame_ids)
    if source_id is not None:
        where.append("f.source_id = ?")
        params.append(source_id)
    if class_id is not None:
        where.append("EXISTS (SELECT 1 FROM annotations a2 WHERE a2.frame_id = f.id"
                     " AND a2.class_id = ?)")
        params.append(class_id)
    if unannotated_only:
        where.append("NOT EXISTS (SELECT 1 FROM annotations a3 WHERE a3.frame_id = f.id)")
    sql = (f"SELECT {', '.join('f.' + c.strip() for c in _COLUMNS.split(','))},"
           " (SELECT COUNT(*) FROM annotations a WHERE a.frame_id = f.id AND a.kind != 'tag'),"
           " (SELECT group_concat(DISTINCT a.class_id) FROM annotations a WHERE a.frame_id = f.id)"
           " FROM frames f" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY f.source_id, f.frame_index LIMIT ? OFFSET ?")
    rows = conn.execute(sql, (*params, limit, offset)).fetchall()
    columns = [c.strip() for c in _COLUMNS.split(",")]
    out = []
    for row in rows:
        frame = Frame(**dict(zip(columns, row[:len(columns)])))
        ids = sorted(int(x) for x in row[-1].split(",")) if row[-1] else []
        out.append(FrameSummary(frame, row[-2], ids))
    return out


def delete_frames(conn: sqlite3.Connection, frame_ids: list[int]) -> None:
    """Delete frames and (by cascade) their annotations, all or nothing."""
    with transaction(conn):
        conn.executemany("DELETE FROM frames WHERE id = ?", [(i,) for i in frame_ids])


@dataclass
class FilterCounts:
    """How many frames each gallery filter shows."""
    total: int
    unannotated: int
    by_class: dict[int, int]


def filter_counts(conn: sqlite3.Connection) -> FilterCounts:
    """Frame counts for 'all', 'no annotations' and each class, in three indexed queries."""
    total = count_frames(conn)
    unannotated = conn.execute(
        "SELECT COUNT(*) FROM frames f WHERE NOT EXISTS"
        " (SELECT 1 FROM annotations a WHERE a.frame_id = f.id)").fetchone()[0]
    by_class = dict(conn.execute(
        "SELECT class_id, COUNT(DISTINCT frame_id) FROM annotations GROUP BY class_id").fetchall())
    return FilterCounts(total, unannotated, by_class)
