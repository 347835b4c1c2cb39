"""Schema migrations, one per `PRAGMA user_version` step (calibre's schema_upgrades model).

Each step runs inside one transaction together with the version bump, so a crash leaves
the database at the previous version, never half-migrated. Append new steps; never edit
a released one.
"""
from __future__ import annotations

import sqlite3

from src.errors import ProjectError

_V1 = """
CREATE TABLE media_sources (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('video', 'images')),
    path        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    sha256      TEXT,
    size_bytes  INTEGER,
    fps         REAL,
    frame_count INTEGER NOT NULL DEFAULT 0,
    width       INTEGER,
    height      INTEGER,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE frames (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES media_sources(id) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL CHECK (frame_index >= 0),
    timestamp_s REAL,
    image_path  TEXT NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (source_id, frame_index)
);
CREATE TABLE label_classes (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(trim(name)) > 0),
    color      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE annotations (
    id         INTEGER PRIMARY KEY,
    frame_id   INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
    class_id   INTEGER NOT NULL REFERENCES label_classes(id) ON DELETE RESTRICT,
    kind       TEXT NOT NULL CHECK (kind IN ('box', 'polygon', 'tag')),
    geometry   TEXT,
    source     TEXT NOT NULL DEFAULT 'manual'
               CHECK (source IN ('manual', 'imported') OR source LIKE 'model:%'),
    confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    status     TEXT NOT NULL DEFAULT 'accepted' CHECK (status IN ('accepted', 'proposed')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX annotations_by_frame ON annotations(frame_id);
CREATE INDEX annotations_by_class ON annotations(class_id);
CREATE TABLE datasets (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    task         TEXT NOT NULL CHECK (task IN ('detect', 'segment', 'classify', 'crops')),
    path         TEXT NOT NULL,
    config_json  TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL DEFAULT '',
    summary_json TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (name, version)
);
CREATE TABLE training_runs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    task        TEXT NOT NULL,
    model_type  TEXT NOT NULL,
    config_json TEXT NOT NULL DEFAULT '{}',
    dataset_id  INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'paused', 'completed', 'cancelled', 'failed')),
    run_dir     TEXT,
    base_model  TEXT,
    error       TEXT,
    pid         INTEGER,
    queued_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at  TEXT,
    finished_at TEXT
);
CREATE TABLE epoch_metrics (
    run_id       INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
    epoch        INTEGER NOT NULL CHECK (epoch >= 0),
    metrics_json TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE model_versions (
    id           INTEGER PRIMARY KEY,
    task         TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    run_id       INTEGER REFERENCES training_runs(id) ON DELETE SET NULL,
    path         TEXT NOT NULL,
    format       TEXT NOT NULL DEFAULT 'pt',
    metrics_json TEXT NOT NULL DEFAULT '{}',
    is_active    INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (task, name, version)
);
CREATE UNIQUE INDEX one_active_model_per_task ON model_versions(task) WHERE is_active = 1;
"""

# A label class is either an object class (boxes, polygons) or a frame tag (whole-frame
# label). Existing classes: a class used only by tag annotations is a tag, any other one
# (used by a shape, or unused) an object class.
_CLASS_KIND = """
ALTER TABLE label_classes ADD COLUMN kind TEXT NOT NULL DEFAULT 'object'
    CHECK (kind IN ('object', 'tag'));
UPDATE label_classes SET kind = 'tag' WHERE id IN (
    SELECT class_id FROM annotations GROUP BY class_id HAVING SUM(kind <> 'tag') = 0)
"""

# Model versions: readable name, lineage, classes, dataset, files with their sha256; and
# the sha256 of every file LabelLoop wrote or the user trusted (pickles load only if listed).
_MODEL_REGISTRY = """
ALTER TABLE model_versions ADD COLUMN display_name TEXT;
ALTER TABLE model_versions ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE model_versions ADD COLUMN model_type TEXT NOT NULL DEFAULT '';
ALTER TABLE model_versions ADD COLUMN classes_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE model_versions ADD COLUMN dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL;
ALTER TABLE model_versions ADD COLUMN dataset_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE model_versions ADD COLUMN parent_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL;
ALTER TABLE model_versions ADD COLUMN lineage_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE model_versions ADD COLUMN origin TEXT NOT NULL DEFAULT 'trained';
UPDATE model_versions SET display_name = task || '-' || name || '-v' || version;
CREATE UNIQUE INDEX model_versions_by_display_name ON model_versions(display_name);
CREATE TABLE model_files (
    version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (version_id, role)
);
CREATE TABLE trusted_files (
    sha256     TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    origin     TEXT NOT NULL CHECK (origin IN ('run', 'model', 'download', 'user')),
    path       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""

# Model proposals: tracks (AUTOINCREMENT: a rejected track's id is never handed out again)
# and the track id of propagated boxes and a relabelled box's detector class
# (src/db/proposals.py), and the corrections users make to proposals, kept for learning
# from corrections. A correction outlives its annotation (a rejected proposal is deleted).
_PROPOSALS = """
CREATE TABLE tracks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    model_source TEXT NOT NULL CHECK (model_source LIKE 'model:%'),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE proposal_details (
    annotation_id       INTEGER PRIMARY KEY REFERENCES annotations(id) ON DELETE CASCADE,
    track_id            INTEGER REFERENCES tracks(id) ON DELETE SET NULL,
    detector_class      TEXT,
    detector_confidence REAL CHECK (detector_confidence IS NULL
                                    OR (detector_confidence >= 0 AND detector_confidence <= 1))
);
CREATE INDEX proposal_details_by_track ON proposal_details(track_id) WHERE track_id IS NOT NULL;
CREATE TABLE corrections (
    id            INTEGER PRIMARY KEY,
    annotation_id INTEGER,
    frame_id      INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
    model_source  TEXT NOT NULL CHECK (model_source LIKE 'model:%'),
    kind          TEXT NOT NULL CHECK (kind IN ('accepted', 'moved_resized', 'reclassified',
                                                'deleted', 'added')),
    before_json   TEXT,
    after_json    TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX corrections_by_model ON corrections(model_source)
"""

# Frames the user ticked "exclude from datasets" in the gallery: every dataset build leaves
# them out. A table of its own (not a column of frames): the flag goes with the frame
# (cascade) and no frame query changes.
_DATASET_EXCLUSIONS = """
CREATE TABLE dataset_exclusions (
    frame_id   INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""

# Learning from corrections (src/training/learning): a session ties a source to a base model
# version and owns a folder of samples and an adapter; per corrected frame, the edit counts
# by kind the user needed; one row per finished update (its metrics and whether its adapter
# is in use). At most one open session per (source, base).
_LEARNING = """
CREATE TABLE learning_sessions (
    id                  INTEGER PRIMARY KEY,
    source_id           INTEGER NOT NULL REFERENCES media_sources(id) ON DELETE CASCADE,
    base_version_id     INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
    base_ref            TEXT NOT NULL,
    task                TEXT NOT NULL,
    folder              TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'promoted', 'discarded')),
    promoted_version_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
    settings_json       TEXT NOT NULL DEFAULT '{}',
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX one_open_learning_session ON learning_sessions(source_id, base_version_id)
    WHERE state = 'open';
CREATE TABLE learning_frames (
    session_id    INTEGER NOT NULL REFERENCES learning_sessions(id) ON DELETE CASCADE,
    frame_id      INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
    accepted      INTEGER NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    moved_resized INTEGER NOT NULL DEFAULT 0 CHECK (moved_resized >= 0),
    reclassified  INTEGER NOT NULL DEFAULT 0 CHECK (reclassified >= 0),
    deleted       INTEGER NOT NULL DEFAULT 0 CHECK (deleted >= 0),
    added         INTEGER NOT NULL DEFAULT 0 CHECK (added >= 0),
    corrected_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (session_id, frame_id)
);
CREATE TABLE learning_updates (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES learning_sessions(id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('finished', 'cancelled', 'failed')),
    samples     INTEGER NOT NULL DEFAULT 0,
    epochs      INTEGER NOT NULL DEFAULT 0,
    val_metric  REAL,
    base_metric REAL,
    used        INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
    reason      TEXT NOT NULL DEFAULT '',
    elapsed_s   REAL NOT NULL DEFAULT 0,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX learning_updates_by_session ON learning_updates(session_id)
"""

_FRAME_SUGGESTIONS = """
CREATE TABLE frame_suggestions (
    source_id        INTEGER NOT NULL REFERENCES media_sources(id) ON DELETE CASCADE,
    rank             INTEGER NOT NULL CHECK (rank >= 1),
    frame_index      INTEGER NOT NULL CHECK (frame_index >= 0),
    score            REAL NOT NULL,
    details          TEXT NOT NULL DEFAULT '',
    model_version_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (source_id, rank)
)
"""

# MIGRATIONS[i] upgrades user_version i -> i + 1.
MIGRATIONS: list[str] = [_V1, _CLASS_KIND, _MODEL_REGISTRY, _PROPOSALS, _DATASET_EXCLUSIONS,
                          _LEARNING, _FRAME_SUGGESTIONS]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def check_supported(conn: sqlite3.Connection, path: str) -> int:
    """Return the schema version, refusing one newer than this LabelLoop knows."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"project database has schema version {version}, this LabelLoop knows up to "
            f"{SCHEMA_VERSION}", path=path,
            hint="open it with a newer LabelLoop; the file was not modified")
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Apply the missing steps, each in its own transaction with its version bump."""
    version = check_supported(conn, path)
    for step in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied this step while we waited for the write
            # lock (two opening a brand-new project at once): re-read under the lock.
            if check_supported(conn, path) > step:
                conn.execute("COMMIT")
                continue
            for statement in _statements(MIGRATIONS[step]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT implicitly; split so the step stays one transaction.
    return [s.strip() for s in script.split(";") if s.strip()]
