"""SIGKILL a process that writes annotations: every reported commit survives, the DB is intact."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import Frame, MediaSource

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills with SIGKILL (POSIX)")

WRITER = Path(__file__).with_name("annotation_writer.py")


@pytest.mark.slow
def test_sigkill_during_writes_loses_no_committed_annotation(tmp_path):
    project = Project.open(tmp_path / "p")
    source = sources_repo.add_source(project.conn, MediaSource("video", "/v.mp4", "v.mp4",
                                                               frame_count=1, width=64, height=48))
    frame = frames_repo.add_frame(project.conn, Frame(source.id, 0, "f.png", 64, 48))
    cls = classes_repo.add_class(project.conn, "car")
    project.close()

    rng = random.Random(1234)
    reported: set[int] = set()
    for _ in range(12):
        child = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path / "p"), str(frame.id),
                                  str(cls.id)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        target = rng.randint(5, 80)  # commits to wait for before the kill
        seen = 0
        while seen < target and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.add(int(line.split()[1]))
            seen += 1
        time.sleep(rng.uniform(0, 0.02))  # land the kill at a random point of a write
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # lines already printed before the kill still count
            reported.add(int(line.split()[1]))
        child.wait()
        assert child.returncode == -signal.SIGKILL

    project = Project.open(tmp_path / "p", create=False)
    stored = {a.id for a in annotations_repo.list_annotations(project.conn)}
    assert len(reported) > 100
    assert reported <= stored
    assert project.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
