"""Trained model versions; at most one active per task (enforced by a partial unique index)."""
from __future__ import annotations

import sqlite3

from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import ModelVersion

_COLUMNS = "id, task, name, version, run_id, path, format, metrics_json, is_active, created_at"
_JSON = {"metrics_json": "metrics"}


def next_version(conn: sqlite3.Connection, task: str, name: str) -> int:
    return conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions"
                        " WHERE task = ? AND name = ?", (task, name)).fetchone()[0]


def add_model_version(conn: sqlite3.Connection, mv: ModelVersion) -> ModelVersion:
    """Register a model; its version number is the next one for (task, name)."""
    with transaction(conn):
        version = next_version(conn, mv.task, mv.name)
        cur = conn.execute(
            "INSERT INTO model_versions (task, name, version, run_id, path, format, metrics_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (mv.task, mv.name, version, mv.run_id, mv.path, mv.format, dumps(mv.metrics)))
        if mv.is_active:
            _activate(conn, cur.lastrowid, mv.task)
    return get_model_version(conn, cur.lastrowid)


def get_model_version(conn: sqlite3.Connection, mv_id: int) -> ModelVersion | None:
    rows = select(conn, ModelVersion, f"SELECT {_COLUMNS} FROM model_versions WHERE id = ?",
                  (mv_id,), _JSON)
    if rows:
        rows[0].is_active = bool(rows[0].is_active)
    return rows[0] if rows else None


def list_model_versions(conn: sqlite3.Connection, task: str | None = None) -> list[ModelVersion]:
    sql = f"SELECT {_COLUMNS} FROM model_versions"
    params: tuple = ()
    if task is not None:
        sql += " WHERE task = ?"
        params = (task,)
    rows = select(conn, ModelVersion, sql + " ORDER BY task, name, version", params, _JSON)
    for row in rows:
        row.is_active = bool(row.is_active)
    return rows


def active_model(conn: sqlite3.Connection, task: str) -> ModelVersion | None:
    rows = [m for m in list_model_versions(conn, task) if m.is_active]
    return rows[0] if rows else None


def set_active(conn: sqlite3.Connection, mv_id: int) -> ModelVersion:
    """Make a version the active one of its task (the previous one is deactivated)."""
    mv = get_model_version(conn, mv_id)
    if mv is None:
        raise ValueError(f"no model version {mv_id}")
    with transaction(conn):
        _activate(conn, mv_id, mv.task)
    return get_model_version(conn, mv_id)


def _activate(conn: sqlite3.Connection, mv_id: int, task: str) -> None:
    conn.execute("UPDATE model_versions SET is_active = 0 WHERE task = ? AND is_active = 1",
                 (task,))
    conn.execute("UPDATE model_versions SET is_active = 1 WHERE id = ?", (mv_id,))
