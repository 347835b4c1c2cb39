"""`learn simulate|status` from the command line on the tiny project of the loop tests."""
from __future__ import annotations

import json

import pytest

from src.cli import main
from src.db import learning as learning_repo
from tests.training.learning.learning_fixtures import make_base, make_source


@pytest.fixture
def squares_project(project):
    source, frames = make_source(project, 6)
    base = make_base(project)
    return project, source, frames, base


def run(capsys, project, *argv) -> tuple[int, str, str]:
    code = main(["--project", str(project.root), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_simulate_without_adapting_counts_every_missed_box(squares_project, capsys):
    project, source, frames, base = squares_project
    code, out, _ = run(capsys, project, "learn", "simulate", "--source", str(source.id),
                       "--base", str(base.id), "--no-adapt", "--json")
    assert code == 0
    result = json.loads(out)
    # the untrained base proposes nothing at conf 0.25: each frame's two squares are missing
    assert [f["frame_index"] for f in result["frames"]] == [f.frame_index for f in frames]
    assert all(f["edits"] == 2 and f["by_kind"]["added"] == 2 for f in result["frames"])
    assert result["updates"] == [] and result["mean_edits"] == 2.0
    assert learning_repo.list_sessions(project.conn) == []


@pytest.mark.slow
def test_simulate_with_updates_then_discards_its_session(squares_project, capsys):
    project, source, frames, base = squares_project
    code, out, _ = run(capsys, project, "learn", "simulate", "--source", source.name,
                       "--base", str(base.id), "--update-every", "3", "--max-epochs", "2",
                       "--budget-s", "60", "--json")
    assert code == 0
    result = json.loads(out)
    assert [u["after_frames"] for u in result["updates"]] == [3, 6]
    assert all(u["elapsed_s"] > 0 and u["epochs"] >= 1 for u in result["updates"])
    assert [f["adapter"] for f in result["frames"]] == [False] * 3 + [True] * 3
    assert [f["updates_done"] for f in result["frames"]] == [0, 0, 0, 1, 1, 1]
    sessions = learning_repo.list_sessions(project.conn)
    assert [s.state for s in sessions] == ["discarded"]
    assert len(learning_repo.corrected_frames(project.conn, sessions[0].id)) == 6


def test_bad_source_and_no_session_exit_2(squares_project, capsys):
    project, source, frames, base = squares_project
    code, _, err = run(capsys, project, "learn", "simulate", "--source", "nope", "--json")
    assert code == 2 and "no source 'nope'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, project, "learn", "status", "--source", str(source.id))
    assert code == 2 and "no open learning session" in err
