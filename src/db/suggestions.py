"""The last "Suggest frames" ranking of each source, kept so that N (next suggested frame)
still works after the project is reopened. A new ranking of a source replaces the old one
in one transaction. Frames are named by index (a suggested frame may not be captured yet,
or be captured, deleted and captured again)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Optional

from src.db.connection import transaction


@dataclass(frozen=True)
class StoredSuggestion:
    source_id: int
    rank: int                    # 1 = best
    frame_index: int
    score: float
    details: str                 # why it was suggested, as the gallery's tooltip says it
    model_version_id: Optional[int] = None


def save_ranking(conn: sqlite3.Connection, source_id: int,
                 ranking: list[StoredSuggestion]) -> None:
    """Replace the source's stored ranking with `ranking` (all or nothing)."""
    with transaction(conn):
        conn.execute("DELETE FROM frame_suggestions WHERE source_id = ?", (source_id,))
        conn.executemany(
            "INSERT INTO frame_suggestions (source_id, rank, frame_index, score, details,"
            " model_version_id) VALUES (?, ?, ?, ?, ?, ?)",
            [(source_id, s.rank, s.frame_index, s.score, s.details, s.model_version_id)
             for s in ranking])


def load_ranking(conn: sqlite3.Connection, source_id: int) -> list[StoredSuggestion]:
    """The source's stored ranking, best first (empty when it has none)."""
    rows = conn.execute(
        "SELECT source_id, rank, frame_index, score, details, model_version_id"
        " FROM frame_suggestions WHERE source_id = ? ORDER BY rank", (source_id,))
    return [StoredSuggestion(*row) for row in rows]


def latest_ranked_source(conn: sqlite3.Connection) -> Optional[int]:
    """The source whose ranking was stored last, or None (rows are inserted with growing
    rowids; timestamps can tie within a millisecond)."""
    row = conn.execute("SELECT source_id FROM frame_suggestions"
                       " ORDER BY rowid DESC LIMIT 1").fetchone()
    return None if row is None else row[0]
