"""Training runs, their per-epoch metrics and the training queue."""
from __future__ import annotations

import sqlite3

from src.db._rows import dumps, select
from src.db.connection import transaction
from src.db.records import RUN_STATUSES, EpochMetrics, TrainingRun

_COLUMNS = ("id, name, task, model_type, config_json, dataset_id, status, run_dir, base_model,"
            " error, pid, queued_at, started_at, finished_at")
_JSON = {"config_json": "config"}
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def add_run(conn: sqlite3.Connection, run: TrainingRun) -> TrainingRun:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO training_runs (name, task, model_type, config_json, dataset_id, status,"
            " run_dir, base_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run.name, run.task, run.model_type, dumps(run.config), run.dataset_id, run.status,
             run.run_dir, run.base_model))
    return get_run(conn, cur.lastrowid)


def get_run(conn: sqlite3.Connection, run_id: int) -> TrainingRun | None:
    rows = select(conn, TrainingRun, f"SELECT {_COLUMNS} FROM training_runs WHERE id = ?",
                  (run_id,), _JSON)
    return rows[0] if rows else None


def list_runs(conn: sqlite3.Connection, status: str | None = None) -> list[TrainingRun]:
    if status is None:
        return select(conn, TrainingRun, f"SELECT {_COLUMNS} FROM training_runs ORDER BY id",
                      (), _JSON)
    return select(conn, TrainingRun,
                  f"SELECT {_COLUMNS} FROM training_runs WHERE status = ? ORDER BY id",
                  (status,), _JSON)


def update_run(conn: sqlite3.Connection, run_id: int, **changes) -> TrainingRun:
    """Set fields of a run; status changes stamp started_at/finished_at."""
    if "status" in changes and changes["status"] not in RUN_STATUSES:
        raise ValueError(f"unknown run status {changes['status']!r}")
    sets, params = [], []
    for key, value in changes.items():
        column = "config_json" if key == "config" else key
        sets.append(f"{column} = ?")
        params.append(dumps(value) if key == "config" else value)
    status = changes.get("status")
    if status == "running":
        sets.append(f"started_at = COALESCE(started_at, {_NOW})")
    if status in ("completed", "cancelled", "failed"):
        sets.append(f"finished_at = {_NOW}")
    with transaction(conn):
        conn.execute(f"UPDATE training_runs SET {', '.join(sets)} WHERE id = ?",
                     (*params, run_id))
    return get_run(conn, run_id)


def cancel_if_queued(conn: sqlite3.Connection, run_id: int) -> bool:
    """Cancel a run that has not started; False when it was claimed (or ended) meanwhile."""
    with transaction(conn):
        changed = conn.execute(f"UPDATE training_runs SET status = 'cancelled', finished_at ="
                               f" {_NOW} WHERE id = ? AND status = 'queued'", (run_id,))
    return changed.rowcount == 1


def claim_next_queued(conn: sqlite3.Connection, pid: int) -> TrainingRun | None:
    """Atomically move the oldest queued run to running, if no run is running now."""
    with transaction(conn):
        if conn.execute("SELECT 1 FROM training_runs WHERE status IN ('running', 'paused')"
                        " LIMIT 1").fetchone():
            return None
        row = conn.execute("SELECT id FROM training_runs WHERE status = 'queued'"
                           " ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        conn.execute(f"UPDATE training_runs SET status = 'running', pid = ?,"
                     f" started_at = COALESCE(started_at, {_NOW}) WHERE id = ?", (pid, row[0]))
    return get_run(conn, row[0])


def record_epoch(conn: sqlite3.Connection, run_id: int, epoch: int, metrics: dict) -> None:
    """Store one epoch's metrics; a re-run of the same epoch (after resume) replaces it."""
    with transaction(conn):
        conn.execute("INSERT INTO epoch_metrics (run_id, epoch, metrics_json) VALUES (?, ?, ?)"
                     " ON CONFLICT (run_id, epoch) DO UPDATE SET metrics_json = excluded.metrics_json,"
                     f" created_at = {_NOW}", (run_id, epoch, dumps(metrics)))


def list_epochs(conn: sqlite3.Connection, run_id: int) -> list[EpochMetrics]:
    return select(conn, EpochMetrics, "SELECT run_id, epoch, metrics_json, created_at"
                  " FROM epoch_metrics WHERE run_id = ? ORDER BY epoch", (run_id,),
                  {"metrics_json": "metrics"})
