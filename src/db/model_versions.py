"""Trained model versions and their files; at most one active per task (a partial unique
index enforces it, so two processes activating at once cannot both win)."""
from __future__ import annotations

import sqlite3

from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import ModelFile, ModelVersion

_COLUMNS = ("id, task, name, version, run_id, path, format, metrics_json, is_active, created_at,"
            " display_name, description, model_type, classes_json, dataset_id, dataset_json,"
            " parent_id, lineage_json, origin")
_JSON = {"metrics_json": "metrics", "classes_json": "classes", "dataset_json": "dataset",
         "lineage_json": "lineage"}
_FILE_COLUMNS = "version_id, role, path, sha256, size_bytes"


def next_version(conn: sqlite3.Connection, task: str, name: str) -> int:
    return conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions"
                        " WHERE task = ? AND name = ?", (task, name)).fetchone()[0]


def add_model_version(conn: sqlite3.Connection, mv: ModelVersion,
                      files: list[ModelFile] = ()) -> ModelVersion:
    """Register a model and its files in one transaction; its version number is the next
    one for (task, name); a display name already taken gets a '-2', '-3'... suffix."""
    with transaction(conn):
        version = next_version(conn, mv.task, mv.name)
        display = _free_display_name(conn, mv.display_name or f"{mv.task}-{mv.name}-v{version}")
        cur = conn.execute(
            "INSERT INTO model_versions (task, name, version, run_id, path, format, metrics_json,"
            " display_name, description, model_type, classes_json, dataset_id, dataset_json,"
            " parent_id, lineage_json, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?)",
            (mv.task, mv.name, version, mv.run_id, mv.path, mv.format, dumps(mv.metrics),
             display, mv.description, mv.model_type, dumps(list(mv.classes)), mv.dataset_id,
             dumps(mv.dataset), mv.parent_id, dumps(list(mv.lineage)), mv.origin))
        _insert_files(conn, cur.lastrowid, files)
        if mv.is_active:
            _activate(conn, cur.lastrowid, mv.task)
    return get_model_version(conn, cur.lastrowid)


def _free_display_name(conn: sqlite3.Connection, wanted: str) -> str:
    name, n = wanted, 1
    while conn.execute("SELECT 1 FROM model_versions WHERE display_name = ?",
                       (name,)).fetchone():
        n += 1
        name = f"{wanted}-{n}"
    return name


def _insert_files(conn: sqlite3.Connection, version_id: int, files) -> None:
    conn.executemany(f"INSERT INTO model_files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                     [(version_id, f.role, f.path, f.sha256, f.size_bytes) for f in files])


def replace_files(conn: sqlite3.Connection, version_id: int, files: list[ModelFile]) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM model_files WHERE version_id = ?", (version_id,))
        _insert_files(conn, version_id, files)


def model_files(conn: sqlite3.Connection, version_id: int) -> list[ModelFile]:
    return select(conn, ModelFile, f"SELECT {_FILE_COLUMNS} FROM model_files"
                  " WHERE version_id = ? ORDER BY role", (version_id,))


def versions_with_file(conn: sqlite3.Connection, sha256: str) -> list[int]:
    """Ids of the versions holding a file with this content (lineage by content)."""
    return [r[0] for r in conn.execute("SELECT version_id FROM model_files WHERE sha256 = ?"
                                       " ORDER BY version_id", (sha256,))]


def file_rows_at(conn: sqlite3.Connection, path: str) -> list[ModelFile]:
    return select(conn, ModelFile, f"SELECT {_FILE_COLUMNS} FROM model_files WHERE path = ?",
                  (path,))


def _finish(conn: sqlite3.Connection, rows: list[ModelVersion]) -> list[ModelVersion]:
    for row in rows:
        row.is_active = bool(row.is_active)
        row.files = model_files(conn, row.id)
    return rows


def get_model_version(conn: sqlite3.Connection, mv_id: int) -> ModelVersion | None:
    rows = select(conn, ModelVersion, f"SELECT {_COLUMNS} FROM model_versions WHERE id = ?",
                  (mv_id,), _JSON)
    return _finish(conn, rows)[0] if rows else None


def get_by_display_name(conn: sqlite3.Connection, name: str) -> ModelVersion | None:
    rows = select(conn, ModelVersion, f"SELECT {_COLUMNS} FROM model_versions"
                  " WHERE display_name = ?", (name,), _JSON)
    return _finish(conn, rows)[0] if rows else None


def get_by_series(conn: sqlite3.Connection, name: str, version: int) -> list[ModelVersion]:
    """Versions named NAME at vN (one per task at most)."""
    rows = select(conn, ModelVersion, f"SELECT {_COLUMNS} FROM model_versions"
                  " WHERE name = ? AND version = ?", (name, version), _JSON)
    return _finish(conn, rows)


def list_model_versions(conn: sqlite3.Connection, task: str | None = None, *,
                        newest_first: bool = False) -> list[ModelVersion]:
    sql = f"SELECT {_COLUMNS} FROM model_versions"
    params: tuple = ()
    if task is not None:
        sql += " WHERE task = ?"
        params = (task,)
    order = " ORDER BY created_at DESC, id DESC" if newest_first else \
        " ORDER BY task, name, version"
    return _finish(conn, select(conn, ModelVersion, sql + order, params, _JSON))


def children(conn: sqlite3.Connection, mv_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM model_versions WHERE parent_id = ?"
                                       " ORDER BY id", (mv_id,))]


def active_model(conn: sqlite3.Connection, task: str) -> ModelVersion | None:
    row = conn.execute("SELECT id FROM model_versions WHERE task = ? AND is_active = 1",
                       (task,)).fetchone()
    return get_model_version(conn, row[0]) if row else None


def set_active(conn: sqlite3.Connection, mv_id: int) -> ModelVersion:
    """Make a version the active one of its task (the previous one is deactivated)."""
    with transaction(conn):
        # read the task inside the write transaction: another process may be activating too
        row = conn.execute("SELECT task FROM model_versions WHERE id = ?", (mv_id,)).fetchone()
        if row is None:
            raise ValueError(f"no model version {mv_id}")
        _activate(conn, mv_id, row[0])
    return get_model_version(conn, mv_id)


def _activate(conn: sqlite3.Connection, mv_id: int, task: str) -> None:
    conn.execute("UPDATE model_versions SET is_active = 0 WHERE task = ? AND is_active = 1",
                 (task,))
    conn.execute("UPDATE model_versions SET is_active = 1 WHERE id = ?", (mv_id,))


def update_text(conn: sqlite3.Connection, mv_id: int, *, display_name: str | None = None,
                description: str | None = None) -> ModelVersion:
    """Rename and/or describe; a display name taken by another version raises IntegrityError."""
    with transaction(conn):
        if display_name is not None:
            conn.execute("UPDATE model_versions SET display_name = ? WHERE id = ?",
                         (display_name, mv_id))
        if description is not None:
            conn.execute("UPDATE model_versions SET description = ? WHERE id = ?",
                         (description, mv_id))
    return get_model_version(conn, mv_id)


def update_classes(conn: sqlite3.Connection, mv_id: int, classes: list[str],
                   task: str | None = None) -> None:
    with transaction(conn):
        conn.execute("UPDATE model_versions SET classes_json = ? WHERE id = ?",
                     (dumps(list(classes)), mv_id))
        if task is not None:
            conn.execute("UPDATE model_versions SET task = ? WHERE id = ?", (task, mv_id))


def delete_model_version(conn: sqlite3.Connection, mv_id: int) -> None:
    """Delete the row and its file rows (children keep their lineage list, parent_id → NULL)."""
    with transaction(conn):
        conn.execute("DELETE FROM model_versions WHERE id = ?", (mv_id,))


# -- trusted files ---------------------------------------------------------------------------

def add_trusted(conn: sqlite3.Connection, sha256: str, origin: str, path: str) -> None:
    """Record a content hash as safe to unpickle; the first origin recorded is kept."""
    with transaction(conn):
        conn.execute("INSERT INTO trusted_files (sha256, origin, path) VALUES (?, ?, ?)"
                     " ON CONFLICT (sha256) DO NOTHING", (sha256, origin, path))


def trusted_origin(conn: sqlite3.Connection, sha256: str) -> str | None:
    row = conn.execute("SELECT origin FROM trusted_files WHERE sha256 = ?",
                       (sha256,)).fetchone()
    return row[0] if row else None


def trusted_paths(conn: sqlite3.Connection, path: str) -> list[str]:
    """sha256s once trusted at this path (to tell 'changed' from 'never seen')."""
    return [r[0] for r in conn.execute("SELECT sha256 FROM trusted_files WHERE path = ?",
                                       (path,))]
