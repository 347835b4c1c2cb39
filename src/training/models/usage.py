"""Whether a version may be deleted now: not while it is a task's active model or the base
of a training that is queued or running."""
from __future__ import annotations

import sqlite3

from src.db import runs
from src.db.records import ModelVersion

_PENDING = ("queued", "running", "paused")


def in_use_reason(conn: sqlite3.Connection, version: ModelVersion) -> str | None:
    """Why `version` is in use (a sentence), or None when nothing depends on it now."""
    if version.is_active:
        return (f"it is the active {version.task} model; activate another {version.task} "
                f"version first")
    refs = {f"model:{version.id}", str(version.path)}
    for run in runs.list_runs(conn):
        if run.status in _PENDING and str(run.config.get("weights") or "") in refs:
            return (f"training run {run.id} ({run.status}) starts from it; wait for it to "
                    f"finish or cancel it first")
    return None
