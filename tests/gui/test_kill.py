"""Killing the app at random moments loses nothing that was committed (autosave)."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.data.capture import import_media
from src.db import classes as class_repo

pytestmark = [pytest.mark.gui, pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills with SIGKILL (POSIX)")]
DRIVER = Path(__file__).with_name("kill_driver.py")


def _run_and_kill(project_dir: Path, seed: int, rng: random.Random) -> list[int]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen([sys.executable, str(DRIVER), str(project_dir), str(seed)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    committed = []
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        wanted = rng.randint(1, 12)
        while len(committed) < wanted:
            line = child.stdout.readline()
            assert line, f"driver died: {child.stderr.read()}"
            committed.append(int(line.split()[1]))
        time.sleep(rng.uniform(0, 0.05))         # kill mid-way through a later box
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return committed


def test_sigkill_at_random_moments_keeps_every_committed_box(project, tiny_video):
    import_media(project, tiny_video)
    class_repo.add_class(project.conn, "car")
    project.close()
    rng = random.Random(1234)
    all_committed = []
    for round_ in range(6):
        all_committed += _run_and_kill(project.root, round_, rng)
        conn = sqlite3.connect(project.root / "project.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {row[0] for row in conn.execute("SELECT id FROM annotations")}
        finally:
            conn.close()
        missing = set(all_committed) - stored
        assert not missing, f"round {round_}: boxes lost after SIGKILL: {sorted(missing)}"
    assert len(all_committed) >= 4
