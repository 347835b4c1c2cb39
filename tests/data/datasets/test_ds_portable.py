"""A detect snapshot (and a YOLO export) copied elsewhere still names its own images:
data.yaml has no `path`, so ultralytics resolves train/val against the yaml's folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from src.data.datasets import DatasetSpec, build_dataset
from src.data.formats import export_annotations
from src.data.formats.yolo import read as read_yolo


def _resolved_by_ultralytics(yaml_path: Path) -> dict:
    from ultralytics.data.utils import check_det_dataset
    return check_det_dataset(str(yaml_path), autodownload=False)


def _check_copy_points_at_itself(source: Path, copy: Path, work_dir: Path, monkeypatch):
    shutil.copytree(source, copy)
    shutil.rmtree(source)                         # the original machine's folder is gone
    monkeypatch.chdir(work_dir)                   # trained from some other directory
    assert "path" not in yaml.safe_load((copy / "data.yaml").read_text(encoding="utf-8"))
    data = _resolved_by_ultralytics(copy / "data.yaml")
    for split in ("train", "val"):
        folder = Path(data[split])
        assert folder.is_relative_to(copy.resolve()) and any(folder.iterdir()), (split, folder)
    labeled = read_yolo(copy / "data.yaml")
    assert labeled.images and all(i.path.is_relative_to(copy.resolve())
                                  for i in labeled.images)


def test_copied_detect_snapshot_points_at_its_own_images(mixed_project, tmp_path,
                                                          monkeypatch):
    _, path = build_dataset(mixed_project, DatasetSpec(name="det", task="detect"))
    snapshot = tmp_path / "moved" / "det-v1"
    (tmp_path / "elsewhere").mkdir()
    _check_copy_points_at_itself(path, snapshot, tmp_path / "elsewhere", monkeypatch)


def test_copied_yolo_export_points_at_its_own_images(mixed_project, tmp_path, monkeypatch):
    build_dataset(mixed_project, DatasetSpec(name="det", task="detect"))
    export_annotations(mixed_project, tmp_path / "export", "yolo", dataset="det")
    (tmp_path / "elsewhere").mkdir()
    _check_copy_points_at_itself(tmp_path / "export", tmp_path / "other" / "export",
                                 tmp_path / "elsewhere", monkeypatch)
