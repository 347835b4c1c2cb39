"""Frames excluded from datasets (the gallery's "Exclude from datasets"); every build skips them."""
from __future__ import annotations

import sqlite3

from src.db.connection import transaction


def set_excluded(conn: sqlite3.Connection, frame_ids: list[int], excluded: bool) -> None:
    """Exclude (or include again) these frames, all or nothing."""
    with transaction(conn):
        if excluded:
            conn.executemany("INSERT OR IGNORE INTO dataset_exclusions (frame_id) VALUES (?)",
                             [(i,) for i in frame_ids])
        else:
            conn.executemany("DELETE FROM dataset_exclusions WHERE frame_id = ?",
                             [(i,) for i in frame_ids])


def excluded_frame_ids(conn: sqlite3.Connection) -> set[int]:
    return {row[0] for row in conn.execute("SELECT frame_id FROM dataset_exclusions")}
