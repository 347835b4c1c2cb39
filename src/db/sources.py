"""Media sources: registered video files and image folders."""
from __future__ import annotations

import sqlite3

from src.db._rows import select
from src.db.connection import transaction
from src.db.records import MediaSource
from src.errors import MediaError

_COLUMNS = "id, kind, path, name, sha256, size_bytes, fps, frame_count, width, height, created_at"


def add_source(conn: sqlite3.Connection, source: MediaSource) -> MediaSource:
    """Register a source, or return the one already registered at the same path."""
    return add_source_if_new(conn, source)[0]


def add_source_if_new(conn: sqlite3.Connection,
                      source: MediaSource) -> tuple[MediaSource, bool]:
    """(the source registered at `source.path`, whether this call created it).

    Safe when processes race to register the same path: the insert is a no-op for the
    loser, which gets the winner's row."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO media_sources (kind, path, name, sha256, size_bytes, fps, frame_count,"
            " width, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO NOTHING",
            (source.kind, source.path, source.name, source.sha256, source.size_bytes,
             source.fps, source.frame_count, source.width, source.height))
        return get_source_by_path(conn, source.path), cur.rowcount == 1


def get_source(conn: sqlite3.Connection, source_id: int) -> MediaSource | None:
    rows = select(conn, MediaSource, f"SELECT {_COLUMNS} FROM media_sources WHERE id = ?",
                  (source_id,))
    return rows[0] if rows else None


def get_source_by_path(conn: sqlite3.Connection, path: str) -> MediaSource | None:
    rows = select(conn, MediaSource, f"SELECT {_COLUMNS} FROM media_sources WHERE path = ?",
                  (path,))
    return rows[0] if rows else None


def list_sources(conn: sqlite3.Connection) -> list[MediaSource]:
    return select(conn, MediaSource, f"SELECT {_COLUMNS} FROM media_sources ORDER BY id")


def find_source(conn: sqlite3.Connection, ref: str) -> MediaSource:
    """Resolve what a user typed: a source id or a file/folder name."""
    ref = ref.strip()
    if ref.isdigit() and ref.isascii() and len(ref) <= 18:   # SQLite's ints are 64-bit
        source = get_source(conn, int(ref))
        if source is not None:
            return source
    matches = select(conn, MediaSource,
                     f"SELECT {_COLUMNS} FROM media_sources WHERE name = ? ORDER BY id", (ref,))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{s.id}={s.name}" for s in list_sources(conn)) or "none"
    if len(matches) > 1:
        raise MediaError(f"{len(matches)} sources are named '{ref}'", field="SOURCE",
                         hint=f"use the source id instead (known: {known})")
    raise MediaError(f"no source '{ref}' in this project", field="SOURCE",
                     hint=f"use an id or file name that 'import' printed (known: {known})")


def delete_source(conn: sqlite3.Connection, source_id: int) -> None:
    """Delete a source with its frames and their annotations."""
    with transaction(conn):
        conn.execute("DELETE FROM media_sources WHERE id = ?", (source_id,))
