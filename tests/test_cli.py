"""The CLI end to end, as a user runs it: real processes, real video, real project files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, project: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "main.py")]
    if project is not None:
        cmd += ["--project", str(project)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (96, 64))
    for i in range(260):
        image = np.full((64, 96, 3), (i * 7) % 255, np.uint8)
        cv2.putText(image, str(i), (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
        writer.write(image)
    writer.release()
    return path


def test_import_capture_info(tmp_path, video):
    project = tmp_path / "proj"
    out = run_cli("import", str(video), project=project)
    assert out.returncode == 0, out.stderr
    assert "source 1: clip.avi" in out.stdout and "96x64" in out.stdout and "20 fps" in out.stdout

    out = run_cli("frames", "capture", "clip.avi", "--at", "0,17,249", project=project)
    assert out.returncode == 0, out.stderr
    out = run_cli("frames", "capture", "1", "--every", "100", project=project)  # 0,100,200
    assert out.returncode == 0, out.stderr

    info = json.loads(run_cli("info", "--json", project=project).stdout)
    assert info["sources"] == 1 and info["frames"] == 5 and info["annotations"] == 0
    (source,) = info["source_list"]
    assert (source["fps"], source["frame_count"], source["width"], source["height"]) == (20.0, 260, 96, 64)
    assert len(list((project / "frames").rglob("*.png"))) == 5


def test_user_errors_exit_2_with_one_line(tmp_path, video):
    project = tmp_path / "proj"
    missing = run_cli("import", str(tmp_path / "nope.mp4"), project=project)
    assert missing.returncode == 2
    assert "nope.mp4" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    garbage = tmp_path / "notes.mp4"
    garbage.write_text("not a video")
    out = run_cli("import", str(garbage), project=project)
    assert out.returncode == 2 and "notes.mp4" in out.stderr

    assert run_cli("import", str(video), project=project).returncode == 0
    out = run_cli("frames", "capture", "other.avi", "--at", "1", project=project)
    assert out.returncode == 2 and "no source 'other.avi'" in out.stderr
    out = run_cli("frames", "capture", "1", "--at", "1,x", project=project)
    assert out.returncode == 2 and "--at" in out.stderr
    info = json.loads(run_cli("info", "--json", project=project).stdout)
    assert info["frames"] == 0


def test_info_on_a_folder_that_is_no_project(tmp_path):
    out = run_cli("info", "--json", project=tmp_path / "none")
    assert out.returncode == 2 and "does not exist" in out.stderr


@pytest.mark.slow
def test_demo_builds_classes_and_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for project in (a, b):
        out = run_cli("demo", "--no-train", project=project)
        assert out.returncode == 0, out.stderr
    info = json.loads(run_cli("info", "--json", project=a).stdout)
    assert info["frames"] == 150
    classes = info["classes"]
    assert set(classes) == {"square", "circle", "triangle", "day", "night"}
    assert classes["day"] + classes["night"] == 150
    kinds = {c["name"]: c["kind"] for c in info["class_list"]}
    assert kinds == {"square": "object", "circle": "object", "triangle": "object",
                     "day": "tag", "night": "tag"}
    assert "class day (frame tag): " in run_cli("info", project=a).stdout
    objects = classes["square"] + classes["circle"] + classes["triangle"]
    assert 0.03 <= classes["triangle"] / objects <= 0.08  # rare: about 5% of objects
    frame_a = sorted((a / "frames").rglob("*.png"))[40].read_bytes()
    frame_b = sorted((b / "frames").rglob("*.png"))[40].read_bytes()
    assert frame_a == frame_b
