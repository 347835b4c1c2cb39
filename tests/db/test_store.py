"""The project store: schema, migrations, refusal of foreign files, repositories."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import migrations
from src.db import model_versions as models_repo
from src.db import runs as runs_repo
from src.db import sources as sources_repo
from src.db.connection import connect, transaction
from src.db.project import Project
from src.db.records import Annotation, Frame, MediaSource, ModelVersion, TrainingRun
from src.errors import AnnotationError, MediaError, ProjectError


def _frame(project: Project, index: int = 0) -> Frame:
    source = sources_repo.add_source(project.conn, MediaSource(
        "video", "/videos/a.mp4", "a.mp4", fps=25.0, frame_count=100, width=64, height=48))
    return frames_repo.add_frame(project.conn, Frame(source.id, index, f"frames/1/{index:06d}.png", 64, 48))


def test_new_project_is_wal_with_foreign_keys_at_current_schema(project):
    conn = project.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert migrations.schema_version(conn) == migrations.SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"media_sources", "frames", "label_classes", "annotations", "datasets",
            "training_runs", "epoch_metrics", "model_versions"} <= tables


def test_not_sqlite_file_is_refused_and_untouched(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    db = folder / "project.db"
    db.write_bytes(b"this is a spreadsheet, not a database\n" * 10)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(ProjectError, match="not SQLite"):
        Project.open(folder)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in folder.iterdir()) == ["project.db"]


def test_newer_schema_is_refused_and_untouched(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    db = folder / "project.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(ProjectError, match="newer LabelLoop"):
        Project.open(folder)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_failed_migration_step_leaves_previous_version(tmp_path, monkeypatch):
    released = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "MIGRATIONS",
                        migrations.MIGRATIONS + ["CREATE TABLE extra (x); CREATE TABLE broken ("])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.MIGRATIONS))
    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "project.db")
    conn = sqlite3.connect(tmp_path / "project.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == released
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None


def test_capture_row_is_idempotent(project):
    frame = _frame(project, 7)
    again = frames_repo.add_frame(project.conn, Frame(frame.source_id, 7, "other.png", 64, 48))
    assert again.id == frame.id and again.image_path == frame.image_path
    assert frames_repo.count_frames(project.conn) == 1


def test_annotation_round_trip_and_undo_keeps_id(project):
    frame = _frame(project)
    cls = classes_repo.add_class(project.conn, "car")
    box = annotations_repo.add_annotation(
        project.conn, Annotation(frame.id, cls.id, "box", [1.5, 2, 30, 40]))
    poly = annotations_repo.add_annotation(
        project.conn, Annotation(frame.id, cls.id, "polygon", [[1, 1], [9, 1], [5, 8]]))
    assert box.geometry == [1.5, 2.0, 30.0, 40.0]
    assert poly.geometry == [[1.0, 1.0], [9.0, 1.0], [5.0, 8.0]]
    annotations_repo.delete_annotations(project.conn, [box.id])
    restored = annotations_repo.add_annotation(project.conn, box)
    assert (restored.id, restored.geometry) == (box.id, box.geometry)


def test_bad_annotation_is_refused_with_field(project):
    frame = _frame(project)
    cls = classes_repo.add_class(project.conn, "car")
    with pytest.raises(AnnotationError, match="geometry"):
        annotations_repo.add_annotation(project.conn, Annotation(frame.id, cls.id, "box", [1, 2]))
    with pytest.raises(AnnotationError, match="refused by the store"):
        annotations_repo.add_annotation(project.conn, Annotation(frame.id, 999, "tag"))
    assert annotations_repo.count_annotations(project.conn) == 0


def test_batch_insert_is_all_or_nothing(project):
    frame = _frame(project)
    cls = classes_repo.add_class(project.conn, "car")
    with pytest.raises(AnnotationError):
        annotations_repo.add_annotations(project.conn, [
            Annotation(frame.id, cls.id, "box", [0, 0, 5, 5]),
            Annotation(frame.id, cls.id, "box", [0, 0, 5, 5], confidence=3.0)])
    assert annotations_repo.count_annotations(project.conn) == 0


def test_outer_transaction_rolls_back_nested_writes(project):
    with pytest.raises(RuntimeError):
        with transaction(project.conn):
            classes_repo.add_class(project.conn, "car")
            classes_repo.add_class(project.conn, "bus")
            raise RuntimeError("import failed half way")
    assert classes_repo.list_classes(project.conn) == []


def test_class_delete_refused_while_used_then_reassigned(project):
    frame = _frame(project)
    car = classes_repo.add_class(project.conn, "car")
    truck = classes_repo.add_class(project.conn, "truck")
    ann = annotations_repo.add_annotation(project.conn, Annotation(frame.id, car.id, "tag"))
    with pytest.raises(AnnotationError, match="used by 1 annotation"):
        classes_repo.delete_class(project.conn, car.id)
    classes_repo.delete_class(project.conn, car.id, reassign_to=truck.id)
    assert annotations_repo.get_annotation(project.conn, ann.id).class_id == truck.id
    assert [c.name for c in classes_repo.list_classes(project.conn)] == ["truck"]


def test_class_names_unique_case_insensitive(project):
    classes_repo.add_class(project.conn, "Car")
    with pytest.raises(AnnotationError, match="already exists"):
        classes_repo.add_class(project.conn, "car")


def test_deleting_frame_cascades_to_annotations(project):
    frame = _frame(project)
    cls = classes_repo.add_class(project.conn, "car")
    annotations_repo.add_annotation(project.conn, Annotation(frame.id, cls.id, "box", [0, 0, 4, 4]))
    frames_repo.delete_frames(project.conn, [frame.id])
    assert annotations_repo.count_annotations(project.conn) == 0


def test_find_source_by_id_or_name(project):
    frame = _frame(project)
    assert sources_repo.find_source(project.conn, str(frame.source_id)).name == "a.mp4"
    assert sources_repo.find_source(project.conn, "a.mp4").id == frame.source_id
    with pytest.raises(MediaError, match="no source 'b.mp4'"):
        sources_repo.find_source(project.conn, "b.mp4")


def test_frame_summaries_filter(project):
    frame = _frame(project, 0)
    empty = frames_repo.add_frame(project.conn, Frame(frame.source_id, 1, "f1.png", 64, 48))
    cls = classes_repo.add_class(project.conn, "car")
    annotations_repo.add_annotation(project.conn, Annotation(frame.id, cls.id, "box", [0, 0, 4, 4]))
    summaries = frames_repo.list_frame_summaries(project.conn)
    assert [(s.frame.id, s.shape_count, s.class_ids) for s in summaries] == [
        (frame.id, 1, [cls.id]), (empty.id, 0, [])]
    assert [s.frame.id for s in frames_repo.list_frame_summaries(project.conn, class_id=cls.id)] == [frame.id]
    assert [s.frame.id for s in frames_repo.list_frame_summaries(
        project.conn, unannotated_only=True)] == [empty.id]


def test_one_active_model_per_task(project):
    a = models_repo.add_model_version(project.conn, ModelVersion("detect", "det", 0, "m/a.pt",
                                                                 is_active=True))
    b = models_repo.add_model_version(project.conn, ModelVersion("detect", "det", 0, "m/b.pt"))
    assert (a.version, b.version) == (1, 2)
    models_repo.set_active(project.conn, b.id)
    assert models_repo.active_model(project.conn, "detect").id == b.id
    assert not models_repo.get_model_version(project.conn, a.id).is_active
    with pytest.raises(sqlite3.IntegrityError):
        project.conn.execute("UPDATE model_versions SET is_active = 1")


def test_queue_claims_one_run_at_a_time(project):
    first = runs_repo.add_run(project.conn, TrainingRun("a", "detect", "yolo"))
    second = runs_repo.add_run(project.conn, TrainingRun("b", "detect", "yolo"))
    assert runs_repo.claim_next_queued(project.conn, pid=1).id == first.id
    assert runs_repo.claim_next_queued(project.conn, pid=2) is None
    runs_repo.update_run(project.conn, first.id, status="completed")
    claimed = runs_repo.claim_next_queued(project.conn, pid=2)
    assert claimed.id == second.id and claimed.status == "running"
    runs_repo.record_epoch(project.conn, second.id, 0, {"loss": 1.0})
    runs_repo.record_epoch(project.conn, second.id, 0, {"loss": 0.5})
    assert [(e.epoch, e.metrics) for e in runs_repo.list_epochs(project.conn, second.id)] == [
        (0, {"loss": 0.5})]


def test_deleted_class_and_frames_come_back_under_their_ids(project):
    frame = _frame(project)
    car = classes_repo.add_class(project.conn, "car", "#112233")
    classes_repo.delete_class(project.conn, car.id)
    again = classes_repo.add_class(project.conn, "car", "#112233", class_id=car.id)
    assert (again.id, again.name, again.color) == (car.id, "car", "#112233")

    frames_repo.delete_frames(project.conn, [frame.id])
    frames_repo.restore_frames(project.conn, [frame])
    assert frames_repo.get_frame(project.conn, frame.id) == frame
