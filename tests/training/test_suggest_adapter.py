"""`learn suggest` on a source with an open learning session whose adapter is in use: the
disagreement between the base and base + adapter is scored for every suggestion."""
from __future__ import annotations

import json

import pytest

from src.cli import main as cli_main
from src.db import annotations as annotations_repo
from src.training.learning.session import LearningSession
from src.training.learning.settings import LearnSettings
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = pytest.mark.slow


def test_suggest_scores_disagreement_with_the_session_adapter(project, capsys):
    source, frames = make_source(project, 8)
    base = make_base(project)
    session = LearningSession.open(project, source.id, base.id, settings=LearnSettings(
        max_epochs=2, update_every=0, lr=1e-2, batch=4, budget_s=60))
    for frame in frames[:4]:
        session.frame_corrected(frame.id, {"added": 2})
    assert session.request_update() == "started" and session.wait(240)
    assert session.status().adapter_in_use
    session.close()
    unlabelled = [a.id for f in frames[4:] for a in annotations_repo.list_annotations(
        project.conn, f.id)]
    annotations_repo.delete_annotations(project.conn, unlabelled)
    capsys.readouterr()             # what ultralytics printed while the test set up

    assert cli_main(["--project", str(project.root), "learn", "suggest", "--source",
                     str(source.id), "--count", "3", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compared_with_adapter"] is True and out["labelled"] == 4
    assert {s["frame_index"] for s in out["suggestions"]} <= {4, 5, 6, 7}
    for s in out["suggestions"]:
        assert 0.0 <= s["uncertainty"]["disagreement"] <= 1.0
