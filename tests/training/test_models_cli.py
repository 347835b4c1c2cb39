"""`models ...` on real trained versions: list/show/activate/rename/delete, compare
re-evaluating on one split, ONNX export matching PyTorch, bundles moving a model with its
lineage between projects, imports refused or untrusted, activation racing across processes.

One module-scoped project trains a tiny yolov8n (3 epochs at 64 px) and fine-tunes it once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from src.cli import main as cli_main
from src.db import datasets as datasets_repo
from src.db.project import Project
from src.db.records import DatasetRecord
from src.training import trust
from src.training.models import ModelManager
from tests.training.yolo_fixtures import write_yolo_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ("imgsz=64", "batch=4", "device=cpu", "workers=0", "tensorboard=false", "patience=0")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(project root, models dir, v1 id, v2 id): v2 fine-tuned from v1."""
    base = tmp_path_factory.mktemp("models-cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELLOOP_MODELS", str(base / "models"))
        mp.setenv("LABELLOOP_LOCK_DIR", str(base / "lock"))
        root = base / "project"
        with Project.open(root) as project:
            data = write_yolo_dataset(root / "datasets" / "shapes" / "v1", n_train=8, n_val=4)
            datasets_repo.add_dataset(project.conn, DatasetRecord(
                name="shapes", version=1, task="detect", path=project.relpath(data.parent)))
        for extra in (("epochs=3",), ("epochs=1", "weights=model:1")):
            assert cli_main(["--project", str(root), "train", "configs/detection.yaml",
                             "--dataset", "shapes", *TINY, *extra]) == 0
    return root, base / "models", 1, 2


def models(root: Path, *args: str) -> int:
    return cli_main(["--project", str(root), "models", *args])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.mark.slow
def test_list_show_activate_rename_describe(trained, capsys):
    root, _, v1, v2 = trained
    assert models(root, "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [v2, v1]                    # newest first
    assert rows[1]["active"] and not rows[0]["active"] and all(r["trusted"] for r in rows)
    assert rows[0]["parent_id"] == v1 and rows[0]["classes"] == ["red", "blue"]
    assert models(root, "show", str(v2), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert {f["role"] for f in shown["files"]} == {"weights", "metadata"}
    assert shown["lineage"][0]["display_name"] == rows[1]["display_name"]
    assert shown["dataset"]["name"] == "shapes" and shown["dataset"]["version"] == 1

    assert models(root, "activate", str(v2)) == 0
    assert "active detect model: 2" in capsys.readouterr().out
    assert models(root, "show", "active:detect", "--json") == 0
    assert json.loads(capsys.readouterr().out)["id"] == v2
    assert models(root, "rename", str(v1), "baseline") == 0
    assert models(root, "describe", "baseline", "first try") == 0
    capsys.readouterr()
    assert models(root, "show", "baseline", "--json") == 0
    assert json.loads(capsys.readouterr().out)["description"] == "first try"
    assert models(root, "activate", "baseline") == 0
    capsys.readouterr()
    for bad in (("show", "999"), ("activate", "nope"), ("rename", str(v2), "baseline"),
                ("show", "active"), ("describe", str(v2), "x\x00y")):
        assert models(root, *bad) == 2, bad
        one_line_error(capsys)
    assert models(root, "show", "999") == 2
    assert "no model version '999'" in one_line_error(capsys)


@pytest.mark.slow
def test_compare_re_evaluates_both_versions_on_the_same_split(trained, capsys, monkeypatch):
    import logging

    import ultralytics.utils

    root, _, v1, v2 = trained
    # as in a process where ultralytics was imported verbose: stdout must still be JSON only
    monkeypatch.setattr(ultralytics.utils, "VERBOSE", True)
    monkeypatch.setattr(ultralytics.utils.LOGGER, "level", logging.INFO)
    assert models(root, "compare", str(v1), str(v2), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "shapes v1" and result["split"] == "val"
    assert [v["id"] for v in result["versions"]] == [v1, v2]
    for version in result["versions"]:
        assert version["images"] == 4 and version["ms_per_image"] > 0
        assert 0.0 <= version["metrics"]["mAP50-95(B)"] <= 1.0
        assert set(version["per_class"]) == {"red", "blue"}
    assert models(root, "compare", str(v1), str(v2), "--split", "test") == 2
    assert "no 'test' split" in one_line_error(capsys)
    assert models(root, "compare", str(v1), str(v1)) == 2
    one_line_error(capsys)


@pytest.mark.slow
def test_onnx_export_gives_the_same_boxes_as_pytorch(trained, tmp_path, capsys):
    import onnxruntime as ort
    from ultralytics import YOLO

    root, _, v1, _ = trained
    out = tmp_path / "v1.onnx"
    assert models(root, "export", str(v1), "--format", "onnx", "--out", str(out)) == 0
    with Project.open(root) as project:
        weights = ModelManager(project).weights_path(ModelManager(project).get(v1))
    images = sorted((root / "datasets" / "shapes" / "v1" / "images" / "val").glob("*.png"))

    # raw network output: onnxruntime session vs the PyTorch model, same input tensor
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    import torch
    torch_model = YOLO(str(weights)).model.float().eval()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x))[0].numpy()
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-3

    # boxes after the same post-processing; a barely trained model needs a low threshold
    conf = 0.001
    found = 0
    for image in images:
        a = YOLO(str(weights)).predict(image, imgsz=64, conf=conf, verbose=False)[0].boxes
        b = YOLO(str(out), task="detect").predict(image, imgsz=64, conf=conf,
                                                  verbose=False)[0].boxes
        found += _match_boxes(a, b, conf)
    assert found > 0, "no boxes to compare"


def _match_boxes(a, b, threshold: float, tol: float = 1e-3) -> int:
    """Every box above threshold + tol in one result has a twin in the other: same class,
    IoU ≥ 0.99, confidence within tol (boxes near the threshold may fall on either side).
    Returns how many boxes were matched."""
    from ultralytics.utils.metrics import box_iou

    matched = 0
    for first, second in ((a, b), (b, a)):
        for i in range(len(first)):
            conf, cls = float(first.conf[i]), int(first.cls[i])
            if conf <= threshold + tol:
                continue
            iou = box_iou(first.xyxy[i:i + 1], second.xyxy)[0]
            twins = [abs(conf - float(second.conf[j])) for j in range(len(second))
                     if int(second.cls[j]) == cls and float(iou[j]) >= 0.99]
            assert twins and min(twins) <= tol, (conf, cls, twins)
            matched += 1
    return matched


@pytest.mark.slow
def test_a_bundle_moves_a_model_with_its_lineage_and_arrives_untrusted(trained, tmp_path,
                                                                        capsys):
    root, _, v1, v2 = trained
    b1, b2 = tmp_path / "v1.zip", tmp_path / "v2.zip"
    assert models(root, "export", str(v1), "--format", "bundle", "--out", str(b1)) == 0
    assert models(root, "export", str(v2), "--format", "bundle", "--out", str(b2)) == 0
    other = tmp_path / "other"
    Project.open(other).close()
    assert models(other, "import", str(b1)) == 0
    assert models(other, "import", str(b2)) == 0
    assert "not trusted" in capsys.readouterr().out
    with Project.open(other) as project:
        mm = ModelManager(project)
        first, second = sorted(mm.list(), key=lambda v: v.id)
        assert second.parent_id == first.id and second.origin == "imported"
        assert second.classes == ["red", "blue"] and second.dataset["name"] == "shapes"
        assert not mm.is_trusted(second)
        from src.errors import UntrustedModelError
        with pytest.raises(UntrustedModelError):
            mm.weights_path(second)
    assert models(other, "import", str(b2)) == 2                     # already there
    assert "already registered" in one_line_error(capsys)
    assert models(other, "trust", str(second.id)) == 0
    with Project.open(other) as project:
        mm = ModelManager(project)
        assert mm.weights_path(mm.get(second.id)).is_file()


def _rewrite_zip(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name, data = change(info.filename, zin.read(info))
            zout.writestr(name, data)
    return dst


@pytest.mark.slow
def test_altered_or_hostile_bundles_are_refused_and_nothing_is_registered(trained, tmp_path,
                                                                          capsys):
    root, _, v1, _ = trained
    bundle = tmp_path / "v1.zip"
    assert models(root, "export", str(v1), "--format", "bundle", "--out", str(bundle)) == 0
    target = tmp_path / "other"
    Project.open(target).close()

    def flip_weights(name, data):
        return name, (data[:-1] + bytes([data[-1] ^ 1])) if name.endswith("model.pt") else data

    def escape(name, data):
        if name == "manifest.json":
            return name, data.replace(b'"files/model.pt"', b'"files/../../evil.pt"')
        return ("files/../../evil.pt" if name.endswith("model.pt") else name), data

    cases = {"tampered": (flip_weights, "does not match its sha256"),
             "escape": (escape, "unsafe file name")}
    for label, (change, message) in cases.items():
        hostile = _rewrite_zip(bundle, tmp_path / f"{label}.zip", change)
        assert models(target, "import", str(hostile)) == 2
        assert message in one_line_error(capsys)
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")
    assert models(target, "import", str(not_zip)) == 2
    one_line_error(capsys)
    assert not (tmp_path / "evil.pt").exists()
    with Project.open(target) as project:
        assert ModelManager(project).list() == []
        leftovers = [p for p in project.models_dir.rglob("*") if p.is_file()]
        assert leftovers == []


def test_a_bare_pickle_import_is_never_unpickled_until_trusted(project, tmp_path, capsys):
    from tests.training.test_trust_loading import evil_pickle

    marker = tmp_path / "pwned"
    evil = evil_pickle(tmp_path / "gift.pt", marker)
    assert models(project.root, "import", str(evil)) == 2           # needs --task
    assert "--task" in one_line_error(capsys)
    assert models(project.root, "import", str(evil), "--task", "detect") == 0
    (version,) = ModelManager(project).list()
    assert version.origin == "imported" and not ModelManager(project).is_trusted(version)
    assert models(project.root, "export", str(version.id), "--format", "onnx",
                  "--out", str(tmp_path / "x.onnx")) == 2
    assert "not trusted yet" in one_line_error(capsys)
    assert not marker.exists()


@pytest.mark.slow
def test_a_benign_pt_imported_with_trust_reads_its_classes(project, tmp_path, capsys):
    from ultralytics import YOLO

    benign = tmp_path / "shared.pt"
    YOLO("yolov8n.yaml").save(benign)
    assert models(project.root, "import", str(benign), "--trust") == 0
    (version,) = ModelManager(project).list()
    assert version.task == "detect" and len(version.classes) == 80
    assert ModelManager(project).is_trusted(version)


def test_delete_refuses_the_active_version_without_force_and_keeps_runs(project, capsys):
    from src.db import runs as runs_repo
    from src.db.records import TrainingRun
    from tests.training.test_model_manager import make_version

    run = runs_repo.add_run(project.conn, TrainingRun("det", "detect", "yolo",
                                                      status="completed"))
    active = make_version(project, active=True)
    project.conn.execute("UPDATE model_versions SET run_id = ? WHERE id = ?",
                         (run.id, active.id))
    folder = ModelManager(project).folder(active)
    assert models(project.root, "delete", str(active.id)) == 2
    assert "--force" in one_line_error(capsys) and folder.is_dir()
    assert models(project.root, "delete", str(active.id), "--force") == 0
    assert not folder.exists() and ModelManager(project).list() == []
    assert runs_repo.get_run(project.conn, run.id).status == "completed"


_RACER = """
import sys
sys.path.insert(0, {root!r})
from src.db.project import Project
from src.training.models import ModelManager
with Project.open({project!r}) as p:
    mm = ModelManager(p)
    ids = [int(x) for x in sys.argv[1:]]
    for i in range(60):
        mm.activate(ids[i % len(ids)])
"""


def test_two_processes_activating_at_once_leave_exactly_one_active(project):
    from tests.training.test_model_manager import make_version

    ids = [make_version(project).id for _ in range(4)]
    script = _RACER.format(root=str(ROOT), project=str(project.root))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, *map(str, order)], env=env,
                              stderr=subprocess.PIPE, text=True)
             for order in (ids, ids[::-1])]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    active = project.conn.execute("SELECT id FROM model_versions WHERE task = 'detect'"
                                  " AND is_active = 1").fetchall()
    assert len(active) == 1 and active[0][0] in ids
