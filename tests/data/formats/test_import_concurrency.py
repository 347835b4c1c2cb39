"""An annotation import never keeps other writers waiting: it decodes and stages its images
before taking SQLite's write lock, which it then holds only to insert rows and rename."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from format_files import write_image
from src.data import capture
from src.data.capture import import_media
from src.data.formats import import_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo

ROOT = Path(__file__).resolve().parents[3]
N_IMAGES = 60
SLOW_DECODE_S = 0.05         # per image: the import spends >= 3 s staging
WRITER_BUSY_TIMEOUT_MS = 1500  # shorter than the staging: a lock held through it fails

# Another process (the GUI saving edits): one annotation per write until told to stop.
WRITER = """
import sys, time
from pathlib import Path
from src.db import annotations
from src.db.project import Project
from src.db.records import Annotation
project = Project.open(Path(sys.argv[1]), create=False)
project.conn.execute("PRAGMA busy_timeout = {timeout}")
frame_id, class_id, stop, ready = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
count = 0
while not stop.exists():
    annotations.add_annotations(project.conn, [Annotation(frame_id, class_id, "box", [1, 1, 5, 5])])
    count += 1
    ready.touch()
    time.sleep(0.01)
print(count)
"""


def _yolo_dataset(root: Path) -> Path:
    for i in range(N_IMAGES):
        write_image(root / "images" / "train" / f"{i:03d}.png", 64, 48, 500 + i)
        label = root / "labels" / "train" / f"{i:03d}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train",
                                                    "names": ["imported"]}))
    return root / "data.yaml"


@pytest.mark.slow
def test_a_long_import_and_another_process_writing_both_succeed(project, tmp_path,
                                                                 monkeypatch):
    write_image(tmp_path / "edits" / "0.png", 64, 48, 1)
    _, (frame,) = import_media(project, tmp_path / "edits")
    manual = classes_repo.add_class(project.conn, "manual")
    data_yaml = _yolo_dataset(tmp_path / "ds")
    plan_image = capture._plan_image
    monkeypatch.setattr(capture, "_plan_image",
                        lambda path: (time.sleep(SLOW_DECODE_S), plan_image(path))[1])
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(timeout=WRITER_BUSY_TIMEOUT_MS), str(project.root),
         str(frame.id), str(manual.id), str(stop), str(ready)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, writer.communicate()
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.05)
        written_before = _manual_count(project, manual.id)
        summary = import_annotations(project, data_yaml, "yolo")
        written_during = _manual_count(project, manual.id) - written_before
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert written_during > 0          # the two really overlapped
    assert _manual_count(project, manual.id) == int(out)       # every write landed
    assert summary["annotations"] == N_IMAGES
    imported = classes_repo.get_class_by_name(project.conn, "imported")
    assert len(annotations_repo.list_annotations(project.conn, class_id=imported.id)) \
        == N_IMAGES


def _manual_count(project, class_id: int) -> int:
    return len(annotations_repo.list_annotations(project.conn, class_id=class_id))
