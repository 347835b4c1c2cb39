"""Learning sessions (src/training/learning): sessions, corrected frames with their edit
counts by kind, and finished updates. Every function is one transaction."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Optional

from src.db._rows import dumps, select
from src.db.connection import transaction

EDIT_KINDS = ("accepted", "moved_resized", "reclassified", "deleted", "added")
SESSION_STATES = ("open", "promoted", "discarded")

_SESSION_COLUMNS = ("id, source_id, base_version_id, base_ref, task, folder, state,"
                    " promoted_version_id, settings_json, created_at")
_UPDATE_COLUMNS = ("id, session_id, status, samples, epochs, val_metric, base_metric, used,"
                   " reason, elapsed_s, finished_at")


@dataclass
class LearningSessionRecord:
    source_id: int
    base_version_id: Optional[int]
    base_ref: str                     # the base's display name when the session began
    task: str                         # 'detect' | 'segment'
    folder: str                       # relative to the project folder
    state: str = "open"
    promoted_version_id: Optional[int] = None
    settings: dict = field(default_factory=dict)
    id: Optional[int] = None
    created_at: Optional[str] = None


@dataclass
class CorrectedFrame:
    """What the user had to change on one frame, by kind (proposals.CORRECTION_KINDS)."""
    session_id: int
    frame_id: int
    accepted: int = 0
    moved_resized: int = 0
    reclassified: int = 0
    deleted: int = 0
    added: int = 0
    corrected_at: Optional[str] = None

    @property
    def edits(self) -> int:
        """Edits the user made (an acceptance as it was costs nothing)."""
        return self.moved_resized + self.reclassified + self.deleted + self.added


@dataclass
class LearningUpdate:
    session_id: int
    status: str                       # 'finished' | 'cancelled' | 'failed'
    samples: int = 0
    epochs: int = 0
    val_metric: Optional[float] = None
    base_metric: Optional[float] = None
    used: bool = False
    reason: str = ""
    elapsed_s: float = 0.0
    id: Optional[int] = None
    finished_at: Optional[str] = None


def add_session(conn: sqlite3.Connection, s: LearningSessionRecord) -> LearningSessionRecord:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO learning_sessions (source_id, base_version_id, base_ref, task, folder,"
            " state, settings_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (s.source_id, s.base_version_id, s.base_ref, s.task, s.folder, s.state,
             dumps(s.settings)))
    return get_session(conn, cur.lastrowid)


def get_session(conn: sqlite3.Connection, session_id: int) -> LearningSessionRecord | None:
    rows = _sessions(conn, "WHERE id = ?", (session_id,))
    return rows[0] if rows else None


def find_open_session(conn: sqlite3.Connection, source_id: int,
                      base_version_id: int) -> LearningSessionRecord | None:
    rows = _sessions(conn, "WHERE source_id = ? AND base_version_id = ? AND state = 'open'",
                     (source_id, base_version_id))
    return rows[0] if rows else None


def list_sessions(conn: sqlite3.Connection, source_id: int | None = None,
                  state: str | None = None) -> list[LearningSessionRecord]:
    where, params = [], []
    for clause, value in (("source_id = ?", source_id), ("state = ?", state)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return _sessions(conn, ("WHERE " + " AND ".join(where)) if where else "", tuple(params))


def _sessions(conn: sqlite3.Connection, where: str, params: tuple) -> list[LearningSessionRecord]:
    return select(conn, LearningSessionRecord,
                  f"SELECT {_SESSION_COLUMNS} FROM learning_sessions {where} ORDER BY id",
                  params, {"settings_json": "settings"})


def close_session(conn: sqlite3.Connection, session_id: int, state: str,
                  promoted_version_id: int | None = None) -> LearningSessionRecord:
    """Mark a session promoted or discarded (it stays listed, no longer open)."""
    if state not in SESSION_STATES[1:]:
        raise ValueError(f"a session closes as promoted or discarded, not {state!r}")
    with transaction(conn):
        conn.execute("UPDATE learning_sessions SET state = ?, promoted_version_id = ?"
                     " WHERE id = ?", (state, promoted_version_id, session_id))
    return get_session(conn, session_id)


def record_corrected_frame(conn: sqlite3.Connection, frame: CorrectedFrame) -> CorrectedFrame:
    """Store (or replace: the frame was corrected again) a frame's edit counts."""
    counts = [int(getattr(frame, k)) for k in EDIT_KINDS]
    if any(c < 0 for c in counts):
        raise ValueError(f"edit counts cannot be negative: {dict(zip(EDIT_KINDS, counts))}")
    with transaction(conn):
        conn.execute(
            "INSERT INTO learning_frames (session_id, frame_id, accepted, moved_resized,"
            " reclassified, deleted, added) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, frame_id) DO UPDATE SET accepted = excluded.accepted,"
            " moved_resized = excluded.moved_resized, reclassified = excluded.reclassified,"
            " deleted = excluded.deleted, added = excluded.added,"
            " corrected_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (frame.session_id, frame.frame_id, *counts))
    return next(f for f in corrected_frames(conn, frame.session_id) if f.frame_id == frame.frame_id)


def corrected_frames(conn: sqlite3.Connection, session_id: int) -> list[CorrectedFrame]:
    return select(conn, CorrectedFrame,
                  "SELECT session_id, frame_id, accepted, moved_resized, reclassified, deleted,"
                  " added, corrected_at FROM learning_frames WHERE session_id = ?"
                  " ORDER BY corrected_at, frame_id", (session_id,))


def remove_corrected_frame(conn: sqlite3.Connection, session_id: int, frame_id: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM learning_frames WHERE session_id = ? AND frame_id = ?",
                     (session_id, frame_id))


def correction_counts(conn: sqlite3.Connection, frame_id: int, model_source: str) -> dict[str, int]:
    """How many corrections of each kind the corrections table holds for a frame and model."""
    counts = dict.fromkeys(EDIT_KINDS, 0)
    for kind, n in conn.execute("SELECT kind, COUNT(*) FROM corrections WHERE frame_id = ?"
                                " AND model_source = ? GROUP BY kind", (frame_id, model_source)):
        counts[kind] = n
    return counts


def add_update(conn: sqlite3.Connection, u: LearningUpdate) -> LearningUpdate:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO learning_updates (session_id, status, samples, epochs, val_metric,"
            " base_metric, used, reason, elapsed_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (u.session_id, u.status, u.samples, u.epochs, u.val_metric, u.base_metric,
             int(bool(u.used)), u.reason, float(u.elapsed_s)))
    return _updates(conn, "WHERE id = ?", (cur.lastrowid,))[0]


def list_updates(conn: sqlite3.Connection, session_id: int) -> list[LearningUpdate]:
    return _updates(conn, "WHERE session_id = ?", (session_id,))


def last_update(conn: sqlite3.Connection, session_id: int,
                status: str | None = "finished") -> LearningUpdate | None:
    rows = [u for u in list_updates(conn, session_id) if status is None or u.status == status]
    return rows[-1] if rows else None


def _updates(conn: sqlite3.Connection, where: str, params: tuple) -> list[LearningUpdate]:
    rows = select(conn, LearningUpdate,
                  f"SELECT {_UPDATE_COLUMNS} FROM learning_updates {where} ORDER BY id", params)
    for row in rows:
        row.used = bool(row.used)
    return rows
