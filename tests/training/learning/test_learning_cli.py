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


@pytest.mark.slow
def test_simulate_with_a_segment_base_updates_and_counts_polygons(project, capsys):
    from tests.training.learning.learning_fixtures import make_polygon_source, make_seg_base

    source, frames = make_polygon_source(project, 6)
    base = make_seg_base(project)
    code, out, _ = run(capsys, project, "learn", "simulate", "--source", str(source.id),
                       "--base", str(base.id), "--update-every", "3", "--max-epochs", "2",
                       "--budget-s", "60", "--json")
    assert code == 0
    result = json.loads(out)
    assert [u["after_frames"] for u in result["updates"]] == [3, 6]
    # the untrained base proposes nothing at conf 0.25: the triangle and the square missing
    assert [f["by_kind"]["added"] for f in result["frames"]][:3] == [2, 2, 2]
    assert [f["adapter"] for f in result["frames"]] == [False] * 3 + [True] * 3
    assert [s.state for s in learning_repo.list_sessions(project.conn)] == ["discarded"]


def test_simulated_annotator_counts_polygon_edits_by_mask_iou(project, monkeypatch):
    """A stand-in model proposes the red triangle exactly and the blue square as the half of
    it below its diagonal: same boxes as the truth, but the square needs an adjustment."""
    from src.training.inference import loading
    from src.training.inference.results import Detection, Prediction
    from src.training.learning.settings import LearnSettings
    from src.training.learning.simulate import simulate
    from tests.training.learning.learning_fixtures import (SIZE, make_polygon_source,
                                                           make_seg_base, squares, triangle)

    source, frames = make_polygon_source(project, 3)
    base = make_seg_base(project)
    shown = iter(frames)

    class StandIn:
        def predict_one(self, image):
            i = next(shown).frame_index
            x1, y1, x2, y2 = squares(i)["blue"]
            half = [[x1, y1], [x1, y2], [x2, y2]]
            return Prediction(width=SIZE, height=SIZE, task="segment", detections=[
                Detection("polygon", 0, "red", 0.9, [4 + 2 * i, 6, 28 + 2 * i, 30], triangle(i)),
                Detection("polygon", 1, "blue", 0.8, [x1, y1, x2, y2], half)])

    monkeypatch.setattr(loading, "predictor_for", lambda *a, **k: StandIn())
    result = simulate(project, source.id, str(base.id), settings=LearnSettings(), adapt=False)
    assert [f.by_kind for f in result.frames] == [
        dict(accepted=1, moved_resized=1, reclassified=0, deleted=0, added=0)] * 3
    assert result.mean_edits() == 1.0
