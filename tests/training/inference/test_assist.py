"""Assisted labeling's core: following the boxes a user selected (not every object the
detector sees) through the next frames, pre-labelling frames, and the clear refusals."""
from __future__ import annotations

import pytest

from src.data.capture import import_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.errors import ModelError
from src.training.inference import loading
from src.training.inference.assist import (AssistOptions, Seed, active_proposer, follow,
                                           prelabel, propagate_selection)
from src.training.inference.media import open_input
from src.training.inference.results import box_iou
from tests.training.inference.colour_detector import ColourDetector
from tests.training.inference.conftest import square_positions


def test_follow_keeps_only_the_selected_box_with_the_users_class(squares_video):
    seed = Seed(list(map(float, square_positions(3)["red"])), "my-red")
    with open_input(squares_video) as media:
        frames = list(follow(ColourDetector(conf=0.25), media, 3, [seed], list(range(4, 12))))
    assert [p.frame_index for p, _ in frames] == list(range(4, 12))
    for pred, _ in frames:
        assert [d.class_name for d in pred.detections] == ["my-red"]     # blue not followed
        truth = list(square_positions(pred.frame_index)["red"])
        assert box_iou(pred.detections[0].box, truth) > 0.8
    assert len({p.detections[0].track_id for p, _ in frames}) == 1


@pytest.fixture
def colour_detector(monkeypatch):
    """The registered detector is loaded and verified for real, then answers by colour."""
    real = loading.predictor_for
    monkeypatch.setattr(loading, "predictor_for",
                        lambda p, mv, **o: (real(p, mv, **o), ColourDetector(**o))[1])


def test_propagate_selection_stores_proposals_on_the_next_frames_only(
        project, detector, squares_video, colour_detector):
    source, _ = import_media(project, squares_video)
    prelabel(project, source.id, [3, 4, 5, 6, 7], AssistOptions(device="cpu"))  # red + blue
    seed = Seed(list(map(float, square_positions(0)["blue"])), "blue")
    summary = propagate_selection(project, source.id, 0, [seed], 5,
                                  AssistOptions(device="cpu"))
    assert summary.frames == 5 and summary.captured == 2          # frames 1 and 2 are new
    ids = proposals_repo.find_proposals(project.conn, source_id=source.id)
    frames = {f.id: f.frame_index for f in frames_repo.list_frames(project.conn, source.id)}
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    seen = sorted((frames[a.frame_id], names[a.class_id])
                  for a in annotations_repo.get_annotations(project.conn, ids))
    # blue followed on 1-5 (replacing the pre-label's blue on 3-5), the pre-label's red kept
    assert seen == [(1, "blue"), (2, "blue"), (3, "blue"), (3, "red"), (4, "blue"),
                    (4, "red"), (5, "blue"), (5, "red"), (6, "blue"), (6, "red"),
                    (7, "blue"), (7, "red")]
    tracked = {a for a, d in proposals_repo.get_details(project.conn, ids).items()
               if d.track_id is not None}
    assert len(tracked) == 5
    assert len({d.track_id for d in proposals_repo.get_details(project.conn, ids).values()
                if d.track_id is not None}) == 1


def test_prelabel_stops_when_asked_and_keeps_what_was_done(project, detector, squares_video,
                                                          colour_detector):
    source, _ = import_media(project, squares_video)
    done = []
    summary = prelabel(project, source.id, list(range(0, 12)), AssistOptions(batch=2,
                                                                            device="cpu"),
                       progress=lambda n, total: done.append(n), should_stop=lambda: bool(done))
    assert summary.frames == 2 and summary.proposals == 4     # one batch, two squares each


def test_no_active_detector_or_bad_frames_are_refused_with_what_to_do(project, squares_video):
    with pytest.raises(ModelError, match="no active detect / segment model"):
        active_proposer(project)


def test_frames_outside_the_source_are_refused(project, detector, squares_video,
                                               colour_detector):
    source, _ = import_media(project, squares_video)
    with pytest.raises(ModelError, match="outside this source"):
        prelabel(project, source.id, [0, 999], AssistOptions(device="cpu"))
    with pytest.raises(ModelError, match="no box to follow"):
        propagate_selection(project, source.id, 0, [], 5, AssistOptions(device="cpu"))
