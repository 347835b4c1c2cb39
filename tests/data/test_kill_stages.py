"""SIGKILL at each stage of import, capture, dataset build and export: once the project is
opened again, no file or folder is left without its row and no row without its files.

The writer kills itself at a named stage ($LABELLOOP_CRASH_AT, see src/processes.py), in a
forked process, so each kill lands exactly between the two steps under test.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.data.capture import capture_frames, import_media
from src.data.datasets import DatasetSpec, build_dataset
from src.data.formats import export_annotations, import_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import datasets as datasets_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import Annotation
from tests.data.conftest import write_cv2_video
from tests.data.orphans import leftovers

_ctx = (multiprocessing.get_context("fork")            # None where there is no fork: the
        if "fork" in multiprocessing.get_all_start_methods() else None)  # tests skip
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                 reason="forks the writer to kill it")]


def _crash_at(stage: str, work, args) -> None:
    os.environ["LABELLOOP_CRASH_AT"] = stage
    work(*args)


def run_killed_at(stage: str, work, *args) -> None:
    proc = _ctx.Process(target=_crash_at, args=(stage, work, args))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -signal.SIGKILL, f"the writer was not killed at {stage}"


# ---- the writers, run in the killed process -------------------------------------------

def _import(root: Path, folder: Path) -> None:
    with Project.open(root, create=False) as project:
        import_media(project, folder)


def _import_yolo(root: Path, data_yaml: Path) -> None:
    with Project.open(root, create=False) as project:
        import_annotations(project, data_yaml, "yolo")


def _capture(root: Path, indices: list[int]) -> None:
    with Project.open(root, create=False) as project:
        capture_frames(project, sources_repo.list_sources(project.conn)[0], indices)


def _build(root: Path) -> None:
    with Project.open(root, create=False) as project:
        build_dataset(project, DatasetSpec(name="ds", task="detect", split=(0.5, 0.5, 0.0),
                                           group_by="none"))


def _export(root: Path, out: Path) -> None:
    with Project.open(root, create=False) as project:
        export_annotations(project, out, "coco")


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def image_dir(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    return folder


@pytest.fixture
def annotated(tmp_path, image_dir) -> Path:
    """A project with 4 frames, each holding one 'car' box."""
    root = tmp_path / "annotated"
    with Project.open(root) as project:
        _, frames = import_media(project, image_dir)
        car = classes_repo.add_class(project.conn, "car")
        annotations_repo.add_annotations(project.conn, [
            Annotation(f.id, car.id, "box", [5, 5, 30, 30]) for f in frames])
    return root


# ---- the tests -----------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["import:staged", "import:placed"])
def test_killed_image_folder_import_leaves_nothing(tmp_path, image_dir, stage):
    root = tmp_path / "p"
    Project.open(root).close()
    run_killed_at(stage, _import, root, image_dir)
    assert leftovers(root) == []
    _import(root, image_dir)
    with Project.open(root, create=False) as project:
        assert len(frames_repo.list_frames(project.conn)) == 4
    assert leftovers(root) == []


def write_yolo(image_dir: Path, listed: int) -> Path:
    """data.yaml listing the first `listed` images of image_dir, one box each."""
    labels = image_dir.parent / "labels"
    labels.mkdir(exist_ok=True)
    for i in range(listed):
        (labels / f"{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    lines = "".join(f"images/{i}.png\n" for i in range(listed))
    (image_dir.parent / "train.txt").write_text(lines)
    data = image_dir.parent / "data.yaml"
    data.write_text("train: train.txt\nnames: [car]\n")
    return data


@pytest.mark.parametrize("stage", ["import:staged", "import:placed"])
def test_killed_annotation_import_leaves_nothing(tmp_path, image_dir, stage):
    root = tmp_path / "p"
    Project.open(root).close()
    data = write_yolo(image_dir, 4)
    run_killed_at(stage, _import_yolo, root, data)
    assert leftovers(root) == []
    _import_yolo(root, data)
    with Project.open(root, create=False) as project:
        assert len(frames_repo.list_frames(project.conn)) == 4
        assert len(annotations_repo.list_annotations(project.conn)) == 4
    assert leftovers(root) == []


@pytest.mark.parametrize("stage", ["import:staged", "import:placed"])
def test_killed_subset_import_leaves_no_link_folder(tmp_path, image_dir, stage):
    root = tmp_path / "p"
    Project.open(root).close()
    run_killed_at(stage, _import_yolo, root, write_yolo(image_dir, 3))
    assert leftovers(root) == []


@pytest.mark.parametrize("stage", ["capture:staged", "capture:placed"])
def test_killed_capture_leaves_nothing(tmp_path, stage):
    root = tmp_path / "p"
    video = write_cv2_video(tmp_path / "clip.avi", 6, "MJPG", size=(64, 48))
    with Project.open(root) as project:
        import_media(project, video)
        capture_frames(project, sources_repo.list_sources(project.conn)[0], [0])
    run_killed_at(stage, _capture, root, [3])
    assert leftovers(root) == []
    with Project.open(root, create=False) as project:
        assert [f.frame_index for f in frames_repo.list_frames(project.conn)] == [0]
    _capture(root, [3])
    assert leftovers(root) == []


@pytest.mark.parametrize("stage", ["build:written", "build:placed"])
def test_killed_dataset_build_leaves_nothing_and_the_next_is_v1(annotated, stage):
    run_killed_at(stage, _build, annotated)
    assert leftovers(annotated) == []
    _build(annotated)
    with Project.open(annotated, create=False) as project:
        assert [d.version for d in datasets_repo.list_datasets(project.conn)] == [1]
    assert leftovers(annotated) == []


def test_killed_export_leaves_no_temp_folder_beside_the_target(annotated, tmp_path):
    out = tmp_path / "exports" / "coco-out"
    run_killed_at("export:written", _export, annotated, out)
    assert [p.name for p in out.parent.iterdir()][0].startswith(".export-")  # before the sweep
    assert leftovers(annotated, out.parent) == []
    assert not out.exists()
    _export(annotated, out)
    assert list((out / "annotations").glob("instances_*.json"))
    assert leftovers(annotated, out.parent) == []


def test_the_sweep_keeps_what_live_processes_and_other_programs_own(annotated):
    """Staging named after a live process, and names LabelLoop never makes, stay."""
    mine = os.getpid()
    keep = [annotated / "frames" / f".import-{mine}-abc", annotated / "frames" / "notes",
            annotated / "datasets" / "x" / f".build-{mine}-abc", annotated / "datasets" / "x" / "draft"]
    for path in keep:
        path.mkdir(parents=True)
    dead = annotated / "frames" / ".import-999999999-abc"
    dead.mkdir()
    Project.open(annotated, create=False).close()
    assert all(p.is_dir() for p in keep) and not dead.exists()


def test_the_sweep_removes_what_earlier_versions_left(annotated):
    """Staging names of earlier LabelLoop versions: pid-named ones when the pid is gone, the
    pid-less import staging once it is a day old."""
    frames = annotated / "frames"
    old_import, young_import = frames / ".import-ab12_cd3", frames / ".import-zz99_yy8"
    stale, build = frames / ".stale-7-999999999", annotated / "datasets" / "d" / ".tmp-v3-999999999-ab12"
    for path in (old_import, young_import, stale, build):
        path.mkdir(parents=True)
        (path / "000000.png").write_bytes(b"x")
    os.utime(old_import, (0, 0))
    Project.open(annotated, create=False).close()
    assert young_import.is_dir()
    assert not old_import.exists() and not stale.exists() and not build.exists()


def test_a_moved_project_keeps_its_import_link_folders(tmp_path, image_dir):
    """Source paths are stored absolute: after a move they name the old location, and the
    sweep must still know the imports/ folders as registered."""
    root = tmp_path / "p"
    Project.open(root).close()
    _import_yolo(root, write_yolo(image_dir, 3))      # 3 of 4 images: a link folder
    linked = [p.name for p in (root / "imports").iterdir()]
    assert len(linked) == 1
    moved = tmp_path / "moved"
    root.rename(moved)
    Project.open(moved, create=False).close()
    assert [p.name for p in (moved / "imports").iterdir()] == linked
