"""Propagation through video with ultralytics' real trackers, fed with exact detections:
one stable track per object, track ids stored with the proposals, whole tracks accepted
or rejected from the command line."""
from __future__ import annotations

import json

import pytest

from src.cli import main as cli_main
from src.data.capture import import_media
from src.db import annotations as annotations_repo
from src.db import proposals as proposals_repo
from src.training.inference import loading
from src.training.inference.media import open_input
from src.training.inference.propagate import propagate
from src.training.inference.results import box_iou
from tests.training.inference.colour_detector import ColourDetector
from tests.training.inference.conftest import VIDEO_FRAMES, square_positions


@pytest.mark.parametrize("tracker", ["bytetrack", "botsort"])
def test_each_object_keeps_one_track_over_the_frames(squares_video, tracker):
    with open_input(squares_video) as media:
        frames = list(propagate(ColourDetector(conf=0.25), media, list(range(VIDEO_FRAMES)),
                                tracker=tracker))
    by_class: dict[str, set[int]] = {"red": set(), "blue": set()}
    for pred, _ in frames[1:]:           # a track is confirmed on its second frame
        assert len(pred.detections) == 2
        for det in pred.detections:
            by_class[det.class_name].add(det.track_id)
            truth = square_positions(pred.frame_index)[det.class_name]
            assert box_iou(det.box, list(truth)) > 0.8
    assert len(by_class["red"]) == len(by_class["blue"]) == 1
    assert by_class["red"] != by_class["blue"]


def test_propagate_cli_stores_tracks_that_are_accepted_or_rejected_together(
        project, detector, squares_video, monkeypatch, capsys):
    # the registered detector is loaded and verified for real; its 1-epoch boxes are
    # noise, so the command tracks with the colour detector instead
    real = loading.predictor_for
    monkeypatch.setattr(loading, "predictor_for",
                        lambda p, mv, **o: (real(p, mv, **o), ColourDetector(**o))[1])
    source, _ = import_media(project, squares_video)
    root = ["--project", str(project.root)]
    assert cli_main([*root, "propagate", "squares.avi", "--from-frame", "2", "--to-frame",
                     "11", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    tracks = {t["class"]: t for t in out["tracks"]}
    assert set(tracks) == {"red", "blue"} and out["stored"]["captured"] == 10
    assert tracks["red"]["last_frame"] == 11 and tracks["red"]["boxes"] >= 9
    ids = proposals_repo.find_proposals(project.conn, source_id=source.id)
    details = proposals_repo.get_details(project.conn, ids)
    assert {d.track_id for d in details.values()} == {tracks["red"]["track_id"],
                                                      tracks["blue"]["track_id"]}

    red = str(tracks["red"]["track_id"])
    assert cli_main([*root, "proposals", "accept", "1", "--track", red, "--frames", "2:8"]) == 0
    assert capsys.readouterr().out.strip() == "accepted 6 proposal(s)"
    assert cli_main([*root, "proposals", "reject", "1", "--track",
                     str(tracks["blue"]["track_id"])]) == 0
    assert capsys.readouterr().out.strip() == f"rejected {tracks['blue']['boxes']} proposal(s)"
    left = annotations_repo.list_annotations(project.conn)
    assert {(a.status, details[a.id].track_id) for a in left} == {
        ("accepted", int(red)), ("proposed", int(red))}
    kinds = [c.kind for c in proposals_repo.list_corrections(project.conn)]
    assert kinds.count("accepted") == 6 and kinds.count("deleted") == tracks["blue"]["boxes"]

    # a second propagation gets new track ids (the rejected track's id is not reused) and
    # replaces the model's open proposals only
    assert cli_main([*root, "propagate", "1", "--from-frame", "2", "--to-frame", "5",
                     "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert min(t["track_id"] for t in again["tracks"]) > max(int(red),
                                                             tracks["blue"]["track_id"])
    assert len(annotations_repo.list_annotations(project.conn, status="accepted")) == 6
