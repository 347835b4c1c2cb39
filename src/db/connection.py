"""The one SQLite connection factory: WAL, foreign keys, busy timeout, migrations."""
from __future__ import annotations

import itertools
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from src.db import migrations
from src.errors import ProjectError

_SQLITE_HEADER = b"SQLite format 3\x00"
_savepoints = itertools.count()


def connect(db_path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and create/migrate) a project database.

    A file that is not SQLite, or whose schema is newer than this code knows, is refused
    before anything is written to it.
    """
    path = Path(db_path)
    if path.exists():
        _check_is_sqlite(path)
        _check_version_read_only(path)
    elif not create:
        raise ProjectError("no project database here", path=path,
                           hint="create the project first (python main.py --project DIR import ...)")
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise ProjectError("SQLite refused WAL journaling", path=path,
                               hint="put the project on a local disk, not a network share")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrations.migrate(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def _check_is_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ProjectError(f"cannot read the project database ({exc.strerror})", path=path,
                           hint="check the file's permissions") from exc
    if header and header != _SQLITE_HEADER:
        raise ProjectError("this file is not a LabelLoop project database (not SQLite)",
                           path=path, hint="choose another project folder; the file was not modified")


def _check_version_read_only(path: Path) -> None:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        migrations.check_supported(conn, str(path))
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"the project database cannot be read ({exc})", path=path,
                           hint="restore it from a backup; the file was not modified") from exc
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work; nests as a savepoint inside an outer transaction."""
    if conn.in_transaction:
        name = f"sp{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
