"""Dataset snapshots."""
from __future__ import annotations

import sqlite3

from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import DatasetRecord

_COLUMNS = "id, name, version, task, path, config_json, content_hash, summary_json, created_at"
_JSON = {"config_json": "config", "summary_json": "summary"}


def next_version(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT MAX(version) FROM datasets WHERE name = ?", (name,)).fetchone()
    return (row[0] or 0) + 1


def add_dataset(conn: sqlite3.Connection, ds: DatasetRecord) -> DatasetRecord:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO datasets (name, version, task, path, config_json, content_hash,"
            " summary_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ds.name, ds.version, ds.task, ds.path, dumps(ds.config), ds.content_hash,
             dumps(ds.summary)))
    return get_dataset_by_id(conn, cur.lastrowid)


def get_dataset_by_id(conn: sqlite3.Connection, dataset_id: int) -> DatasetRecord | None:
    rows = select(conn, DatasetRecord, f"SELECT {_COLUMNS} FROM datasets WHERE id = ?",
                  (dataset_id,), _JSON)
    return rows[0] if rows else None


def get_dataset(conn: sqlite3.Connection, name: str,
                version: int | None = None) -> DatasetRecord | None:
    """A named dataset at `version`, or its latest version when None."""
    if version is None:
        rows = select(conn, DatasetRecord, f"SELECT {_COLUMNS} FROM datasets WHERE name = ?"
                      " ORDER BY version DESC LIMIT 1", (name,), _JSON)
    else:
        rows = select(conn, DatasetRecord, f"SELECT {_COLUMNS} FROM datasets WHERE name = ?"
                      " AND version = ?", (name, version), _JSON)
    return rows[0] if rows else None


def list_datasets(conn: sqlite3.Connection) -> list[DatasetRecord]:
    return select(conn, DatasetRecord, f"SELECT {_COLUMNS} FROM datasets ORDER BY name, version",
                  (), _JSON)
