"""Row <-> dataclass helpers shared by the repository modules."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def to_record(cls: type[T], row: sqlite3.Row | tuple, columns: list[str],
              json_columns: dict[str, str] | None = None) -> T:
    """Build `cls` from a row; `json_columns` maps a column name to the field it decodes into."""
    json_columns = json_columns or {}
    values: dict[str, Any] = {}
    names = {f.name for f in fields(cls)}
    for column, value in zip(columns, row):
        if column in json_columns:
            values[json_columns[column]] = json.loads(value) if value is not None else None
        elif column in names:
            values[column] = value
    return cls(**values)


def select(conn: sqlite3.Connection, cls: type[T], sql: str, params: tuple = (),
           json_columns: dict[str, str] | None = None) -> list[T]:
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [to_record(cls, row, columns, json_columns) for row in cursor.fetchall()]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
