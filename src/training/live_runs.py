"""Runs a reopened window should follow: those the store says are training whose process
is still alive. A run whose process is gone is marked failed, with the reason."""
from __future__ import annotations

import sqlite3

from src.db import runs
from src.db.records import TrainingRun
from src.processes import pid_alive

ACTIVE = ("running", "paused")
FINISHED = ("completed", "cancelled", "failed")


def lost_reason(run: TrainingRun) -> str:
    return (f"the training process (pid {run.pid}) ended without finishing — killed, or the "
            f"machine restarted; Retry resumes run {run.id} from its last checkpoint")


def live_runs(conn: sqlite3.Connection) -> list[TrainingRun]:
    """Runs still training in another process; those whose process died become 'failed'."""
    alive = []
    for run in runs.list_runs(conn):
        if run.status not in ACTIVE:
            continue
        if pid_alive(run.pid):
            alive.append(run)
        else:
            mark_lost(conn, run)
    return alive


def mark_lost(conn: sqlite3.Connection, run: TrainingRun) -> TrainingRun:
    """Record that `run`'s process is gone (unless it finished meanwhile)."""
    current = runs.get_run(conn, run.id)
    if current is None or current.status not in ACTIVE:
        return current
    return runs.update_run(conn, run.id, status="failed", error=lost_reason(run))
