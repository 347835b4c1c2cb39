"""Processes racing on one project: every get-or-create gives the loser the winner's row.

Real processes (fork), released together by a barrier so they really race.
"""
from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from src.data.capture import capture_frames, import_media
from src.data.datasets import DatasetSpec, build_dataset  # imported before the forks
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import datasets as datasets_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.migrations import SCHEMA_VERSION, schema_version
from src.db.project import Project
from src.db.records import Annotation
from tests.data.conftest import write_cv2_video

ROUNDS = 10
_ctx = (multiprocessing.get_context("fork")            # None where there is no fork: the
        if "fork" in multiprocessing.get_all_start_methods() else None)  # tests skip
pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs fork to start racers fast")


def _racer(barrier, results, work, args):
    try:
        barrier.wait(timeout=30)
        results.put(("ok", work(*args)))
    except BaseException:  # noqa: BLE001 - the parent asserts on what each racer saw
        results.put(("error", traceback.format_exc()))


def race(n: int, work, *args) -> list:
    """Run work(*args) in `n` processes released at once; the values they returned."""
    return race_each(work, [args] * n)


def race_each(work, arg_lists: list[tuple]) -> list:
    """Run work(*args) for each args in its own process, all released at once; the values
    they returned, in no particular order."""
    barrier, results = _ctx.Barrier(len(arg_lists)), _ctx.Queue()
    procs = [_ctx.Process(target=_racer, args=(barrier, results, work, args))
             for args in arg_lists]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    errors = [value for status, value in outcomes if status == "error"]
    assert not errors, errors[0]
    return [value for _, value in outcomes]


def _open(root: Path) -> int:
    with Project.open(root) as project:
        return schema_version(project.conn)


def _import(root: Path, path: Path) -> int:
    with Project.open(root, create=False) as project:
        source, _ = import_media(project, path)
        return source.id


def _ensure_class(root: Path, name: str) -> int:
    with Project.open(root, create=False) as project:
        return classes_repo.ensure_class(project.conn, name).id


def _capture(root: Path, source_id: int, indices: list[int]) -> list[int]:
    with Project.open(root, create=False) as project:
        source = sources_repo.get_source(project.conn, source_id)
        return [f.id for f in capture_frames(project, source, indices)]


def test_processes_opening_a_new_project_at_once_all_succeed(tmp_path):
    for round_ in range(ROUNDS):
        root = tmp_path / f"p{round_}" / "nested"
        assert race(3, _open, root) == [SCHEMA_VERSION] * 3


def test_processes_importing_one_video_at_once_share_one_source(tmp_path):
    video = write_cv2_video(tmp_path / "clip.avi", 8, "MJPG", size=(64, 48))
    for round_ in range(ROUNDS):
        Project.open(tmp_path / f"p{round_}").close()
        ids = race(2, _import, tmp_path / f"p{round_}", video)
        with Project.open(tmp_path / f"p{round_}", create=False) as project:
            sources = sources_repo.list_sources(project.conn)
        assert [s.id for s in sources] == [ids[0]] and ids[0] == ids[1]


def test_processes_importing_one_image_folder_at_once_share_one_source(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 50, 3), i * 60, np.uint8))
    for round_ in range(ROUNDS // 2):
        root = tmp_path / f"p{round_}"
        Project.open(root).close()
        ids = race(2, _import, root, folder)
        with Project.open(root, create=False) as project:
            sources = sources_repo.list_sources(project.conn)
            frames = frames_repo.list_frames(project.conn)
        assert [s.id for s in sources] == [ids[0]] and ids[0] == ids[1]
        assert len(frames) == 3
        on_disk = sorted(p.relative_to(root).as_posix() for p in (root / "frames").rglob("*"))
        assert on_disk == [f"frames/{ids[0]}"] + sorted(f.image_path for f in frames)


def test_processes_capturing_the_same_frames_at_once_share_the_rows(tmp_path):
    video = write_cv2_video(tmp_path / "clip.avi", 8, "MJPG", size=(64, 48))
    for round_ in range(ROUNDS // 2):
        root = tmp_path / f"p{round_}"
        with Project.open(root) as project:
            source, _ = import_media(project, video)
        got = race(2, _capture, root, source.id, [1, 4, 6])
        with Project.open(root, create=False) as project:
            frames = frames_repo.list_frames(project.conn)
        assert got[0] == got[1] == [f.id for f in frames]
        on_disk = sorted(p.relative_to(root).as_posix() for p in (root / "frames").rglob("*")
                         if p.is_file())
        assert on_disk == sorted(f.image_path for f in frames)
        assert not [p for p in (root / "frames").iterdir() if p.name.startswith(".")]


def test_processes_ensuring_one_class_at_once_get_the_same_row(tmp_path):
    for round_ in range(ROUNDS):
        root = tmp_path / f"p{round_}"
        Project.open(root).close()
        ids = race(3, _ensure_class, root, "Car" if round_ % 2 else "car")
        with Project.open(root, create=False) as project:
            names = [c.name for c in classes_repo.list_classes(project.conn)]
        assert len(set(ids)) == 1 and len(names) == 1


def _build(root: Path) -> int:
    with Project.open(root, create=False) as project:
        record, _ = build_dataset(project, DatasetSpec(
            name="ds", task="detect", split=(0.5, 0.5, 0.0), group_by="none"))
        return record.version


def test_processes_building_one_dataset_at_once_get_distinct_versions(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 50, 3), i * 60, np.uint8))
    root = tmp_path / "p"
    with Project.open(root) as project:
        _, frames = import_media(project, folder)
        car = classes_repo.add_class(project.conn, "car")
        annotations_repo.add_annotations(project.conn, [
            Annotation(f.id, car.id, "box", [5, 5, 30, 30]) for f in frames])
    for _ in range(3):
        race(2, _build, root)
    with Project.open(root, create=False) as project:
        records = datasets_repo.list_datasets(project.conn)
    assert [r.version for r in records] == [1, 2, 3, 4, 5, 6]
    on_disk = sorted(p.name for p in (root / "datasets" / "ds").iterdir())
    assert on_disk == sorted(f"v{v}" for v in range(1, 7))
    for record in records:  # each snapshot describes itself as the version its row holds
        data = yaml.safe_load((root / record.path / "data.yaml").read_text())
        assert "path" not in data       # the folder can move: no path of its own
        report = (root / record.path / "report.json").read_text()
        assert f'"version": {record.version}' in report
