"""`learn suggest` with a real (tiny, 1-epoch) detector on a real video, as a user runs it."""
from __future__ import annotations

import json

import pytest

from src.cli import main as cli_main
from src.data.capture import capture_frames, import_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db.records import Annotation
from src.db.suggestions import load_ranking

pytestmark = pytest.mark.slow


def test_learn_suggest_ranks_unlabelled_frames_of_the_video(project, detector, squares_video,
                                                            capsys):
    source, _ = import_media(project, squares_video)
    frames = capture_frames(project, source, [0, 12])
    red = classes_repo.get_class_by_name(project.conn, "red") or \
        classes_repo.add_class(project.conn, "red")
    annotations_repo.add_annotation(project.conn, Annotation(frames[0].id, red.id, "box",
                                                             [4, 8, 20, 24]))
    assert cli_main(["--project", str(project.root), "learn", "suggest", "--source",
                     source.name, "--count", "4", "--samples", "8", "--device", "cpu",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["id"] == detector.id and out["labelled"] == 1
    assert out["candidates"] == 9                     # frame 12 + 8 sampled uncaptured
    picked = out["suggestions"]
    assert 1 <= len(picked) <= 4
    assert 0 not in [s["frame_index"] for s in picked]        # labelled: never suggested
    scores = [s["score"] for s in picked]
    assert scores == sorted(scores, reverse=True)
    for s in picked:
        assert s["frame_id"] == (frames[1].id if s["frame_index"] == 12 else None)
        assert 0 <= s["uncertainty"]["low_confidence"] <= 1
        assert 0 <= s["uncertainty"]["entropy"] <= 1
    stored = load_ranking(project.conn, source.id)        # kept for the window's N key
    assert [(r.rank, r.frame_index) for r in stored] == \
        [(rank, s["frame_index"]) for rank, s in enumerate(picked, 1)]
    assert all(r.model_version_id == detector.id for r in stored)


def test_learn_suggest_bad_input_exits_2_with_one_line(project, detector, squares_video,
                                                       capsys):
    import_media(project, squares_video)
    root = ["--project", str(project.root), "learn", "suggest"]
    assert cli_main([*root, "--source", "nope.mp4", "--device", "cpu"]) == 2
    assert "no source 'nope.mp4'" in capsys.readouterr().err
    assert cli_main([*root, "--source", "squares.avi", "--count", "0", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--count" in err[0]
