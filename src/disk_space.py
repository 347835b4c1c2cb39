"""A full disk, wherever it strikes, becomes one StorageError naming what was not written.

The writers already leave nothing half-written when they fail (staging folders, temp files
and transactions are undone); this only turns the low-level error (OSError ENOSPC/EDQUOT
with or without a file name, SQLite's 'database or disk is full') into a message that
says what could not be written and what to do.
"""
from __future__ import annotations

import errno
import functools
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from src.errors import StorageError

_FULL = (errno.ENOSPC, errno.EDQUOT)
_HINT = "free some space on that disk and run it again; nothing was half-written"


@contextmanager
def reporting_full_disk(what: str, where: str | Path,
                        database: str | Path | None = None) -> Iterator[None]:
    """Run the block; a full disk raises StorageError naming `what` and `where` (or the
    project `database` when SQLite could not grow it)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        raise StorageError(f"the disk is full: could not write {what}", path=where,
                           hint=_HINT) from exc
    except sqlite3.OperationalError as exc:
        if not is_database_full(exc):
            raise
        raise StorageError(f"the disk is full: could not record {what} in the project database",
                           path=database or where, hint=_HINT) from exc


def is_database_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(exc))


def reports_full_disk(what: str, where: Callable[..., str | Path]):
    """Decorate a writer whose first argument is the Project: a full disk while it runs is
    a StorageError naming `what` and `where(*args, **kwargs)`."""
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with reporting_full_disk(what, where(*args, **kwargs),
                                     getattr(args[0], "db_path", None) if args else None):
                return fn(*args, **kwargs)
        return run
    return decorate
