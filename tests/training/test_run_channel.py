"""The run's own files: events.jsonl a reopened window reads, control.jsonl it steers with;
runs whose process died are found and marked failed with the reason."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from src.db import runs
from src.db.records import TrainingRun
from src.training.control import RunControl
from src.training.events import EventBus
from src.training.live_runs import live_runs
from src.training.run_channel import (CONTROL_FILE, EVENTS_FILE, attach_event_log,
                                      control_file_commands, read_events, send_command)


def test_events_are_appended_and_read_back_from_an_offset(tmp_path):
    bus = EventBus()
    attach_event_log(bus, tmp_path)
    bus.emit("on_pretrain_routine_start", run_id=7, run_dir=str(tmp_path), message="go")
    events, offset = read_events(tmp_path)
    assert events == [("on_pretrain_routine_start",
                       {"run_id": 7, "run_dir": str(tmp_path), "message": "go"})]
    bus.emit("on_pretrain_routine_start", run_id=7, message="again")
    with open(tmp_path / EVENTS_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"event": "half a line')                  # still being written
    more, offset2 = read_events(tmp_path, offset)
    assert [p["message"] for _, p in more] == ["again"]
    assert read_events(tmp_path, offset2) == ([], offset2)


def _wait(predicate, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_control_file_pauses_resumes_and_cancels_without_replaying_old_commands(tmp_path):
    send_command(tmp_path, "cancel")                        # left by an earlier attempt
    control = RunControl()
    with control_file_commands(tmp_path, control):
        assert not (tmp_path / CONTROL_FILE).exists()
        send_command(tmp_path, "pause")
        assert _wait(lambda: control.paused)
        assert not control.stop_requested
        send_command(tmp_path, "resume")
        assert _wait(lambda: not control.paused)
        send_command(tmp_path, "cancel")
        assert _wait(lambda: control.stop_requested)
    with pytest.raises(ValueError):
        send_command(tmp_path, "explode")


def test_live_runs_keeps_the_alive_and_fails_the_dead_with_a_reason(project):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = runs.add_run(project.conn, TrainingRun("a", "classify", "timm", status="queued"))
    runs.update_run(project.conn, dead.id, status="running", pid=gone.pid)
    alive = runs.add_run(project.conn, TrainingRun("b", "classify", "timm", status="queued"))
    runs.update_run(project.conn, alive.id, status="paused", pid=os.getpid())
    assert [r.id for r in live_runs(project.conn)] == [alive.id]
    failed = runs.get_run(project.conn, dead.id)
    assert failed.status == "failed" and "ended without finishing" in failed.error
    assert runs.get_run(project.conn, alive.id).status == "paused"


def test_a_queued_run_is_cancelled_only_while_still_queued(project):
    run = runs.add_run(project.conn, TrainingRun("a", "classify", "timm", status="queued"))
    assert runs.cancel_if_queued(project.conn, run.id)
    assert runs.get_run(project.conn, run.id).status == "cancelled"
    other = runs.add_run(project.conn, TrainingRun("b", "classify", "timm", status="queued"))
    runs.claim_next_queued(project.conn, 1)
    assert not runs.cancel_if_queued(project.conn, other.id)
    assert runs.get_run(project.conn, other.id).status == "running"
