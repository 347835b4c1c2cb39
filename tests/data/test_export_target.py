"""An export never leaves its temp folder behind, and never damages an existing target."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from src.data import formats
from src.data.capture import import_media
from src.data.formats import export_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db.project import Project
from src.db.records import Annotation
from src.errors import DatasetError


@pytest.fixture
def annotated(tmp_path) -> Project:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 50 * i, np.uint8))
    project = Project.open(tmp_path / "p")
    _, frames = import_media(project, folder)
    car = classes_repo.add_class(project.conn, "car")
    annotations_repo.add_annotations(project.conn, [
        Annotation(f.id, car.id, "box", [5, 5, 30, 30]) for f in frames])
    yield project
    project.close()


def hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_failing_writer_leaves_no_temp_folder_and_the_empty_target_stays(
        annotated, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def broken(labeled, tmp):
        (tmp / "half.json").write_text("{")
        raise RuntimeError("writer crashed half-way")
    monkeypatch.setitem(formats._WRITERS, "voc", broken)
    with pytest.raises(RuntimeError, match="half-way"):
        export_annotations(annotated, out, "voc")
    assert out.is_dir() and list(out.iterdir()) == []
    assert hidden(tmp_path) == [] and hidden(annotated.root) == []


def test_an_existing_folder_with_files_is_refused_untouched(annotated, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not empty"):
        export_annotations(annotated, out, "coco")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep" and hidden(tmp_path) == []


def test_a_target_filled_during_the_export_is_left_as_it_is(annotated, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = formats._WRITERS["voc"]

    def meanwhile(labeled, tmp):
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")  # another program writes the target
        return real(labeled, tmp)
    monkeypatch.setitem(formats._WRITERS, "voc", meanwhile)
    with pytest.raises(DatasetError, match="filled by something else"):
        export_annotations(annotated, out, "voc")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert hidden(tmp_path) == [] and hidden(annotated.root) == []


def test_an_empty_existing_folder_receives_the_export(annotated, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    summary = export_annotations(annotated, out, "voc")
    assert summary["path"] == str(out) and any(out.iterdir()) and hidden(tmp_path) == []
