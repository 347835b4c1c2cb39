"""ModelManager: references, verified files, activation, rename, delete, trust."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.db import model_versions as repo
from src.db.records import ModelVersion
from src.errors import ModelError, ModelIntegrityError, UntrustedModelError
from src.training import trust
from src.training.models import ModelManager
from src.training.models.manager import scan_files


def make_version(project, task="detect", name="det", *, trusted=True, active=False,
                 content=b"weights-bytes", display=None) -> ModelVersion:
    """A registered version whose folder holds a (fake) model.pt and metadata.json."""
    n = len(repo.list_model_versions(project.conn)) + 1
    folder = project.models_dir / task / name / f"v{n}"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(content + bytes([n]))
    (folder / "metadata.json").write_text(json.dumps({"n": n}))
    files = scan_files(project, folder)
    if trusted:
        for f in files:
            repo.add_trusted(project.conn, f.sha256, "model", f.path)
    return repo.add_model_version(project.conn, ModelVersion(
        task=task, name=name, version=0, path=project.relpath(folder / "model.pt"),
        classes=["red", "blue"], is_active=active, display_name=display), files)


def test_references_resolve_to_one_version(project):
    a = make_version(project, active=True, display="detect-20260101-000000-mAP50-95=0.100")
    b = make_version(project)
    c = make_version(project, task="crop_classifier", name="views", active=True)
    mm = ModelManager(project)
    assert mm.get(a.id).id == a.id and mm.get(str(b.id)).id == b.id
    assert mm.get(f"model:{b.id}").id == b.id
    assert mm.get("active:detect").id == a.id
    assert mm.get("active", task="crop_classifier").id == c.id
    assert mm.get("detect-20260101-000000-mAP50-95=0.100").id == a.id
    assert mm.get("det:v2").id == b.id
    assert mm.get(a.id).classes == ["red", "blue"] and mm.get(c.id).task == "crop_classifier"
    assert [m.id for m in mm.list()] == [c.id, b.id, a.id]          # newest first
    assert [m.id for m in mm.list("detect")] == [b.id, a.id]
    for bad in ("999", "nope", "active", "active:segment", "det:v9", "9" * 40):
        with pytest.raises(ModelError):
            mm.get(bad)
    with pytest.raises(ModelError, match="unknown task"):
        mm.list("boxes")


def test_verified_files_refuse_a_tampered_or_untrusted_file(project):
    good = make_version(project)
    mm = ModelManager(project)
    path = mm.weights_path(good)
    assert path.read_bytes().startswith(b"weights-bytes")
    path.write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError, match="changed since it was registered"):
        mm.weights_path(mm.get(good.id))
    path.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        mm.verified_files(mm.get(good.id))

    imported = make_version(project, trusted=False)
    assert not mm.is_trusted(imported)
    with pytest.raises(UntrustedModelError, match="not trusted yet") as err:
        mm.weights_path(imported)
    assert f"models trust {imported.id}" in err.value.hint
    mm.trust(imported.id)
    assert mm.is_trusted(mm.get(imported.id))
    assert mm.weights_path(mm.get(imported.id)).is_file()


def test_legacy_version_without_recorded_files_is_refused_until_trusted(project):
    folder = project.models_dir / "detect" / "old" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"old")
    legacy = repo.add_model_version(project.conn, ModelVersion(
        task="detect", name="old", version=0, path=project.relpath(folder / "model.pt")))
    mm = ModelManager(project)
    with pytest.raises(ModelIntegrityError, match="no recorded sha256"):
        mm.weights_path(legacy)
    trusted = mm.trust(legacy.id)
    assert {f.role for f in trusted.files} == {"weights"}
    assert mm.weights_path(trusted) == folder / "model.pt"


def test_activate_rename_describe(project):
    a = make_version(project, active=True)
    b = make_version(project)
    mm = ModelManager(project)
    mm.activate(b.id)
    assert mm.active("detect").id == b.id and not mm.get(a.id).is_active
    renamed = mm.rename(a.id, "baseline")
    assert mm.get("baseline").id == a.id == renamed.id
    with pytest.raises(ModelError, match="taken"):
        mm.rename(b.id, "baseline")
    for bad in ("", "12", "active-x", "a\nb"):
        with pytest.raises(ModelError):
            mm.rename(b.id, bad)
    assert mm.describe(b.id, "trained on the night shift").description == \
        "trained on the night shift"


def test_delete_removes_files_and_rows_but_not_the_active_one_without_force(project):
    a = make_version(project, active=True)
    b = make_version(project)
    mm = ModelManager(project)
    folder_a, folder_b = mm.folder(a), mm.folder(b)
    with pytest.raises(ModelError, match="active"):
        mm.delete(a.id)
    assert folder_a.is_dir() and mm.get(a.id)
    mm.delete(b.id)
    assert not folder_b.exists() and not any(folder_b.parent.glob(".deleting-*"))
    with pytest.raises(ModelError):
        mm.get(b.id)
    assert project.conn.execute("SELECT COUNT(*) FROM model_files WHERE version_id = ?",
                                (b.id,)).fetchone()[0] == 0
    mm.delete(a.id, force=True)
    assert not folder_a.exists() and mm.list() == []


def test_trust_gate_refuses_unknown_pickles_only_inside_the_gate(project, tmp_path):
    stranger = tmp_path / "x.pt"
    stranger.write_bytes(b"not ours")
    trust.check_before_unpickle(stranger)            # no gate: the caller decides
    with trust.gate(project.conn):
        with pytest.raises(UntrustedModelError, match="not written by LabelLoop"):
            trust.check_before_unpickle(stranger)
        trust.check_before_unpickle(tmp_path / "absent.pt")   # nothing to unpickle
        trust.record_if_gated(stranger, "run")
        trust.check_before_unpickle(stranger)
        stranger.write_bytes(b"changed")
        with pytest.raises(UntrustedModelError, match="changed since LabelLoop wrote it"):
            trust.check_before_unpickle(stranger)
        safe = Path(tmp_path / "w.safetensors")
        safe.write_bytes(b"x")
        trust.check_before_unpickle(safe)


def test_deleting_a_parent_keeps_the_childs_lineage(project):
    parent = make_version(project, display="parent-model")
    child = make_version(project)
    project.conn.execute("UPDATE model_versions SET parent_id = ?, lineage_json = ?"
                         " WHERE id = ?", (parent.id, json.dumps([{"display_name":
                                                                   "parent-model"}]),
                                           child.id))
    ModelManager(project).delete(parent.id)
    kept = ModelManager(project).get(child.id)
    assert kept.parent_id is None and kept.lineage == [{"display_name": "parent-model"}]


def test_a_version_registered_before_the_migration_is_listed_and_can_be_trusted(tmp_path):
    import sqlite3

    from src.db import migrations
    from src.db.project import Project

    root = tmp_path / "old"
    (root / "m").mkdir(parents=True)
    (root / "m" / "model.pt").write_bytes(b"old weights")
    conn = sqlite3.connect(root / "project.db")
    for statement in migrations._statements(migrations.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("INSERT INTO model_versions (task, name, version, path, is_active)"
                 " VALUES ('detect', 'det', 1, 'm/model.pt', 1)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Project.open(root) as project:
        mm = ModelManager(project)
        (old,) = mm.list()
        assert old.display_name == "detect-det-v1" and old.is_active and old.files == []
        with pytest.raises(ModelIntegrityError, match="no recorded sha256"):
            mm.weights_path(old)
        assert mm.weights_path(mm.trust("detect-det-v1")) == root / "m" / "model.pt"


def test_staging_left_by_a_killed_import_or_delete_is_swept_when_old(project):
    import os
    import time

    kept = make_version(project)
    parent = project.models_dir / "detect" / "det"
    old = [parent / ".import-abc", parent / ".deleting-v9-1234", parent / ".v3.xyz"]
    young = parent / ".import-now"
    for folder in [*old, young]:
        (folder / "adapters").mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"half")
    hour_ago = time.time() - 7200
    for folder in old:
        os.utime(folder, (hour_ago, hour_ago))
    removed = ModelManager(project).sweep_staging()
    assert sorted(removed) == sorted(old) and not any(p.exists() for p in old)
    assert young.is_dir() and ModelManager(project).weights_path(kept).is_file()
