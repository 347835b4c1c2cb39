"""The demo's last step: the trained model's proposals on the uncaptured demo frames."""
from __future__ import annotations

import pytest

from src.data.demo import FRAMES, build_demo_project
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db import runs as runs_repo
from src.training.inference.demo import propose_on_uncaptured
from tests.training.inference.conftest import register

pytestmark = pytest.mark.slow


def test_demo_ends_with_proposals_on_every_uncaptured_frame(tmp_path, trained_detector):
    with build_demo_project(tmp_path / "demo") as project:
        truth = annotations_repo.list_annotations(project.conn, status="accepted")
        captured = len(frames_repo.list_frames(project.conn))
        version = register(project, *trained_detector, "detect")
        run = runs_repo.get_run(project.conn, version.run_id)
        summary = propose_on_uncaptured(project, run, conf=0.001, device="cpu")
        assert summary.frames == summary.captured == FRAMES - captured
        assert len(frames_repo.list_frames(project.conn)) == FRAMES
        proposed = annotations_repo.list_annotations(project.conn, status="proposed")
        assert len(proposed) == summary.proposals > 0
        assert {a.source for a in proposed} == {f"model:{version.id}"}
        assert annotations_repo.list_annotations(project.conn, status="accepted") == truth
        other = runs_repo.add_run(project.conn, type(run)(name="x", task="detect",
                                                          model_type="yolo"))
        assert propose_on_uncaptured(project, other) is None    # that run registered nothing
