"""The one SQLite connection factory: WAL, foreign keys, busy timeout, migrations."""
from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from src.db import migrations
from src.errors import ProjectError, StorageError

_savepoints = itertools.count()
_BUSY_TIMEOUT_S = 30.0
_NEARLY_FULL = 64 * 1024  # bytes free under which a 'disk I/O error' is read as a full disk


def connect(db_path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and create/migrate) a project database.

    A file that is not SQLite, or whose schema is newer than this code knows, is refused
    before anything is written to it.
    """
    path = Path(db_path)
    if path.exists():
        _check_readable_database(path)
    elif not create:
        raise ProjectError("no project database here", path=path,
                           hint="create the project first (python main.py --project DIR import ...)")
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        if _set_wal(conn).lower() != "wal":
            raise ProjectError("SQLite refused WAL journaling", path=path,
                               hint="put the project on a local disk, not a network share")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrations.migrate(conn, str(path))
    except sqlite3.OperationalError as exc:
        conn.close()
        _raise_if_disk_full(path, exc)
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection) -> str:
    """PRAGMA journal_mode = WAL, retried while the database is locked: SQLite does not call
    the busy handler for it, and it fails at once when another process opens the same
    project at that moment (seen under load, about 1 in 80 four-process races)."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _check_readable_database(path: Path) -> None:
    """Refuse a file that is not SQLite or has a newer schema, through a read-only connection.

    The file is never opened with plain open(): closing such a handle would drop the POSIX
    locks that this process's SQLite connections hold on it (SQLite's "how to corrupt"
    list, section 2.2), which showed up as 'disk I/O error' in long-running processes.
    """
    if not os.access(path, os.R_OK):
        raise ProjectError("cannot read the project database (permission denied)", path=path,
                           hint="check the file's permissions")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        migrations.check_supported(conn, str(path))
    except sqlite3.DatabaseError as exc:
        _raise_if_disk_full(path, exc)
        if "not a database" in str(exc):
            raise ProjectError("this file is not a LabelLoop project database (not SQLite)",
                               path=path, hint="choose another project folder; the file was "
                                               "not modified") from exc
        raise ProjectError(f"the project database cannot be read ({exc})", path=path,
                           hint="restore it from a backup; the file was not modified") from exc
    finally:
        conn.close()


def _raise_if_disk_full(path: Path, exc: sqlite3.DatabaseError) -> None:
    """SQLite reports a full disk as 'database or disk is full', or as a 'disk I/O error'
    when it cannot even create the WAL index: neither means the file is damaged."""
    full = "disk is full" in str(exc)
    if not full and "disk I/O error" in str(exc):
        try:
            full = shutil.disk_usage(path.parent).free < _NEARLY_FULL
        except OSError:
            full = False
    if full:
        raise StorageError("the disk is full: the project database cannot be opened or grow",
                           path=path, hint="free some space on that disk and run it again;"
                                           " the file was not modified") from exc


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work; nests as a savepoint inside an outer transaction."""
    if conn.in_transaction:
        name = f"sp{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may already have rolled back (I/O error, full disk)
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # never hide the real error behind "no transaction is active"
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
