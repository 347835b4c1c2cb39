"""A full disk during import, capture, dataset build and export: exit 2 with one line that
says what could not be written, and nothing half-written (no orphan file, folder or row).

On a real 2 MB tmpfs where mounting one is allowed (root), else skipped; the patched-writer
test runs everywhere.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.cli import main
from src.data.capture import import_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import datasets as datasets_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import Annotation
from tests.data.conftest import write_cv2_video
from tests.data.orphans import leftovers


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (skipped where it cannot be mounted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill `disk` up, then free `leave` bytes."""
    filler = disk / "filler"
    # Unbuffered: a buffered file would flush its leftover bytes on close and raise there,
    # depending on how the free space happens to line up with the chunk size.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\xff" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def noise_images(folder: Path, n: int, size: int = 200) -> Path:
    """PNGs of noise: incompressible, about 120 KB each at 200 px."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (size, size, 3), np.uint8))
    return folder


def annotate(project: Project) -> None:
    car = classes_repo.add_class(project.conn, "car")
    annotations_repo.add_annotations(project.conn, [
        Annotation(f.id, car.id, "box", [2, 2, 60, 60])
        for f in frames_repo.list_frames(project.conn)])


def run_cli(capsys, *argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.splitlines()


def assert_one_line_naming(err: list[str], what: str, where: Path) -> None:
    assert len(err) == 1, err
    assert "disk is full" in err[0] and what in err[0] and str(where) in err[0], err[0]


def test_importing_more_images_than_the_disk_holds(small_disk, tmp_path, capsys):
    root = small_disk / "p"
    Project.open(root).close()
    code, err = run_cli(capsys, "--project", root, "import", noise_images(tmp_path / "im", 24))
    assert code == 2
    assert_one_line_naming(err, "the imported frames", root / "frames")
    assert leftovers(root) == []
    with Project.open(root, create=False) as project:
        assert sources_repo.list_sources(project.conn) == []


def test_capturing_until_the_disk_is_full_keeps_every_whole_frame(small_disk, tmp_path, capsys):
    root = small_disk / "p"
    video = write_cv2_video(tmp_path / "clip.avi", 40, "MJPG", size=(160, 120))
    with Project.open(root) as project:
        import_media(project, video)
    fill(small_disk, leave=60_000)
    code, err = run_cli(capsys, "--project", root, "frames", "capture", "1", "--every", "1")
    assert code == 2
    assert_one_line_naming(err, "the captured frames", root / "frames")
    assert leftovers(root) == []
    with Project.open(root, create=False) as project:  # the frames before the full disk stay
        assert 0 < len(frames_repo.list_frames(project.conn)) < 40


def test_registering_a_video_when_the_database_cannot_grow(small_disk, tmp_path, capsys):
    root = small_disk / "p"
    Project.open(root).close()
    fill(small_disk)
    video = write_cv2_video(tmp_path / "clip.avi", 4, "MJPG", size=(64, 48))
    code, err = run_cli(capsys, "--project", root, "import", video)
    assert code == 2 and len(err) == 1 and "disk is full" in err[0], err
    (small_disk / "filler").unlink()
    assert leftovers(root) == []
    with Project.open(root, create=False) as project:
        assert sources_repo.list_sources(project.conn) == []


def test_building_a_dataset_on_a_full_disk(small_disk, tmp_path, capsys):
    root = small_disk / "p"
    with Project.open(root) as project:
        import_media(project, noise_images(tmp_path / "im", 6, size=64))
        annotate(project)
    fill(small_disk, leave=48_000)  # room to open the database (its WAL index), not for crops
    code, err = run_cli(capsys, "--project", root, "dataset", "build", "ds", "--task", "crops",
                        "--split", "0.5,0.5,0", "--group-by", "none")
    assert code == 2
    assert_one_line_naming(err, "the dataset", root / "datasets" / "ds")
    (small_disk / "filler").unlink()
    assert leftovers(root) == []
    with Project.open(root, create=False) as project:
        assert datasets_repo.list_datasets(project.conn) == []


def test_exporting_onto_a_full_disk(small_disk, tmp_path, capsys):
    root = tmp_path / "p"
    with Project.open(root) as project:
        import_media(project, noise_images(tmp_path / "im", 6, size=64))
        annotate(project)
    out = small_disk / "exports" / "voc"
    out.parent.mkdir()
    fill(small_disk)
    code, err = run_cli(capsys, "--project", root, "export", out, "--format", "voc")
    assert code == 2
    assert_one_line_naming(err, "the export", out)
    assert list(out.parent.iterdir()) == []
    assert leftovers(root) == []


def test_a_full_disk_in_any_writer_of_a_build_is_one_line_and_leaves_nothing(
        tmp_path, capsys, monkeypatch):
    """Without a small disk: the build's file writer is made to fail as a full disk does."""
    root = tmp_path / "p"
    with Project.open(root) as project:
        import_media(project, noise_images(tmp_path / "im", 4, size=64))
        annotate(project)
    real_write = os.write
    calls = []

    def write(fd, data):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", write)
    code, err = run_cli(capsys, "--project", root, "dataset", "build", "ds", "--task", "detect",
                        "--split", "0.5,0.5,0", "--group-by", "none")
    monkeypatch.undo()
    assert code == 2 and len(calls) > 3
    assert_one_line_naming(err, "the dataset", root / "datasets" / "ds")
    assert leftovers(root) == []
