"""The portable control channel: a `train --events` child paused, resumed and cancelled
through JSON lines on its stdin (what the GUI's TrainingWorker sends), on every OS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from src.db import runs
from src.db.project import Project
from src.training.control import RunControl, apply_command

REPO = Path(__file__).resolve().parents[2]


def test_apply_command_accepts_json_and_bare_words():
    control = RunControl()
    assert apply_command(control, '{"cmd": "pause"}\n') == "pause" and control.paused
    assert apply_command(control, "resume") == "resume" and not control.paused
    assert apply_command(control, '{"cmd": "cancel"}') == "cancel" and control.stop_requested


@pytest.mark.parametrize("line", ['{"cmd": "explode"}', "{not json", '["pause"]', "stop"])
def test_apply_command_names_what_is_wrong(line):
    control = RunControl()
    with pytest.raises(ValueError, match="command"):
        apply_command(control, line)
    assert not control.paused and not control.stop_requested


class _Child:
    """`main.py train --events` with pipes; stdout events collected by a thread."""

    def __init__(self, project_root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "--project", str(project_root), "train", *args,
             "--events"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
        self.proc.stdin.flush()

    def batches(self) -> list[tuple[int, int]]:
        return [(e["epoch"], e["batch"]) for e in list(self.events)
                if e["event"] == "on_train_batch_end"]

    def wait_for(self, predicate, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)


@pytest.mark.slow
def test_stdin_pauses_resumes_and_cancels_a_training_child(project, binary_dataset):
    child = _Child(project.root, "configs/crop_classifier.yaml", "--dataset",
                   str(binary_dataset), "model=test_resnet", "epochs=20", "batch=4",
                   "imgsz=32", "workers=0", "device=cpu", "patience=0", "tensorboard=false")
    try:
        child.wait_for(lambda: child.batches())
        run_id = next(e["run_id"] for e in child.events if "run_id" in e)
        child.send("pause")
        with Project.open(project.root) as watcher:   # the trainer itself records the hold
            child.wait_for(lambda: runs.get_run(watcher.conn, run_id).status == "paused")
        held = child.batches()
        time.sleep(3)
        assert child.batches() == held, "the child trained on while paused"

        child.send("resume")
        child.wait_for(lambda: len(child.batches()) > len(held))
        child.send("cancel")
        assert child.proc.wait(120) == 130
        child._reader.join(10)
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    stopped_at = child.batches()[-1]
    assert stopped_at[0] < 19, "cancel did not stop the run early"
    assert child.events[-1]["event"] == "run_status"
    assert child.events[-1]["status"] == "cancelled"
    run = runs.get_run(project.conn, run_id)
    assert run.status == "cancelled"
    assert any(project.abspath(run.run_dir).rglob("last*")), "no resumable checkpoint"
