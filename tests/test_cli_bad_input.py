"""Every bad input the hardening issue listed exits 2 with exactly one line on stderr (in-process
`main([...])` calls: fast, and a traceback would fail the test by escaping)."""
from __future__ import annotations

import errno
import io
import json
import sqlite3
import sys
from contextlib import redirect_stderr
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.cli import main
from src.db.project import Project


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def proj(tmp_path) -> Path:
    Project.open(tmp_path / "p").close()
    return tmp_path / "p"


def _labelme(folder: Path, label: str) -> Path:
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((32, 48, 3), np.uint8))
    (folder / "a.json").write_text(json.dumps({
        "flags": {}, "imagePath": "a.png", "imageWidth": 48, "imageHeight": 32,
        "shapes": [{"label": label, "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}]}))
    return folder


def test_a_class_name_with_a_newline_is_one_line(proj, tmp_path):
    folder = _labelme(tmp_path / "lm", "two\nlines")
    code, err = run("--project", str(proj), "import", str(folder), "--format", "labelme")
    assert_one_line_error(code, err, "a.json", "shapes[0].label", "control characters")


def test_an_image_outside_the_dataset_names_the_entry(proj, tmp_path):
    folder = _labelme(tmp_path / "lm", "car")
    doc = json.loads((folder / "a.json").read_text())
    (folder / "a.json").write_text(json.dumps({**doc, "imagePath": "../../etc/passwd"}))
    code, err = run("--project", str(proj), "import", str(folder), "--format", "labelme")
    assert_one_line_error(code, err, "imagePath", "../../etc/passwd")


def test_images_without_format_is_refused_before_the_project_is_made(tmp_path):
    code, err = run("--project", str(tmp_path / "new"), "import", str(tmp_path), "--images",
                    str(tmp_path))
    assert_one_line_error(code, err, "--format")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("argv", [
    ("dataset", "show", "x:v99999999999999999999"),
    ("frames", "capture", "99999999999999999999", "--at", "1"),
])
def test_ids_too_large_for_sqlite(proj, argv):
    code, err = run("--project", str(proj), *argv)
    assert_one_line_error(code, err, "99999999999999999999")


@pytest.mark.parametrize("target", ["under_a_file", "too_long"])
def test_unusable_export_targets(proj, tmp_path, target):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "x" if target == "under_a_file" else tmp_path / ("x" * 300)
    code, err = run("--project", str(proj), "export", str(out), "--format", "coco")
    assert_one_line_error(code, err, "OUT")


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_closed_stdout_pipe_exits_quietly(proj, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code, err = run("--project", str(proj), "info", "--json")
    assert (code, err) == (0, "")


@pytest.mark.parametrize("error, needle", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/frames/x.png"), "free some disk"),
    (OSError(errno.ENAMETOOLONG, "File name too long", "/data/crops/xxx"), "shorter name"),
    (sqlite3.OperationalError("database or disk is full"), "free some disk"),
])
def test_the_safety_net_turns_machine_errors_into_one_line(proj, tmp_path, monkeypatch,
                                                          error, needle):
    import src.data.formats as formats

    def fail(*_args, **_kwargs):
        raise error
    monkeypatch.setattr(formats, "import_annotations", fail)
    code, err = run("--project", str(proj), "import", str(tmp_path), "--format", "coco")
    assert_one_line_error(code, err, needle)


def test_other_os_errors_stay_internal_errors(proj, tmp_path, monkeypatch):
    import src.data.formats as formats

    def fail(*_args, **_kwargs):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(formats, "import_annotations", fail)
    with pytest.raises(OSError):
        run("--project", str(proj), "import", str(tmp_path), "--format", "coco")


def test_a_run_id_too_large_for_sqlite_is_a_usage_error(proj):
    with pytest.raises(SystemExit) as exit_:
        run("--project", str(proj), "train", "--resume", "99999999999999999999")
    assert exit_.value.code == 2
