"""The real consumers accept our snapshots: ultralytics' dataset check and a training epoch;
and the demo project's builds keep the rare class in every split."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.data.datasets import DatasetSpec, build_dataset


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_ultralytics_accepts_built_snapshots(mixed_project, task):
    from ultralytics.data.utils import check_det_dataset, img2label_paths
    _, path = build_dataset(mixed_project, DatasetSpec(name=f"u-{task}", task=task))
    data = check_det_dataset(str(path / "data.yaml"))
    assert data["nc"] == (3 if task == "detect" else 1)
    assert data["train"] == str(path / "images" / "train")
    images = sorted((path / "images" / "val").iterdir())
    labels = img2label_paths([str(p) for p in images])   # ultralytics' own pairing rule
    assert images and all(Path(label).is_file() for label in labels)


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory):
    from src.data.demo import build_demo_project
    project = build_demo_project(tmp_path_factory.mktemp("demo") / "project")
    yield project
    project.close()


@pytest.mark.parametrize("task", ["detect", "crops"])
def test_demo_builds_keep_the_rare_class_in_every_split(demo_project, task):
    _, path = build_dataset(demo_project, DatasetSpec(name=f"demo-{task}", task=task))
    report = json.loads((path / "report.json").read_text())
    assert set(report["classes"]) == {"square", "circle", "triangle"}
    assert all(report["instances"]["triangle"][s] > 0 for s in ("train", "val", "test"))


@pytest.mark.slow
def test_ultralytics_trains_one_epoch_on_a_detect_snapshot(demo_project, tmp_path):
    from ultralytics import YOLO
    _, path = build_dataset(demo_project, DatasetSpec(name="demo-train", task="detect"))
    model = YOLO("yolov8n.yaml")
    model.train(data=str(path / "data.yaml"), epochs=1, imgsz=64, batch=16, workers=0,
                device="cpu", project=str(tmp_path / "runs"), name="t", plots=False,
                amp=False, verbose=False, val=True)
    results = tmp_path / "runs" / "t" / "results.csv"
    assert results.is_file()
    rows = results.read_text().strip().splitlines()
    assert len(rows) == 2 and "metrics/mAP50(B)" in rows[0]
    assert (tmp_path / "runs" / "t" / "weights" / "last.pt").is_file()
