"""Predictions become proposals: captured frames, model source, replace-on-rerun in one
transaction, accepted annotations untouched; accepting, rejecting and editing proposals
records corrections."""
from __future__ import annotations

import pytest

from src.data.capture import capture_frames, import_media
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.db.records import Annotation
from src.errors import AnnotationError
from src.training.inference.loading import load_predictor
from src.training.inference.media import open_input
from src.training.inference.run import store_predictions

pytestmark = pytest.mark.slow
LOW = 0.001


def _store(project, version, predictor, source_ref, indices):
    with open_input(source_ref, project) as media:
        return store_predictions(project, media, version, predictor, indices)


def test_proposals_are_stored_replaced_and_never_overwrite_accepted(project, detector,
                                                                    squares_video):
    source, _ = import_media(project, squares_video)
    capture_frames(project, source, [2])
    version, predictor = load_predictor(project, detector.id, conf=LOW, device="cpu")
    first = _store(project, version, predictor, str(source.id), [1, 2, 3])
    assert first.frames == 3 and first.captured == 2 and first.proposals > 0
    assert [f.frame_index for f in frames_repo.list_frames(project.conn, source.id)] == [1, 2, 3]
    stored = annotations_repo.get_annotations(project.conn, first.annotation_ids)
    assert {(a.source, a.status) for a in stored} == {(f"model:{version.id}", "proposed")}
    assert all(0 <= a.confidence <= 1 for a in stored)

    # the user accepts one proposal and draws a box of their own on frame 2
    kept = stored[0]
    proposals_repo.accept(project.conn, [kept.id])
    frame2 = frames_repo.get_frame_at(project.conn, source.id, 2)
    manual = annotations_repo.add_annotation(project.conn, Annotation(
        frame2.id, kept.class_id, "box", [1, 1, 5, 5]))

    again = _store(project, version, predictor, str(source.id), [1, 2, 3])
    assert again.captured == 0 and again.duplicates_skipped >= 1
    # the earlier proposals were replaced, not added to
    assert again.proposals == first.proposals - again.duplicates_skipped
    assert set(first.annotation_ids) & set(again.annotation_ids) <= {kept.id}
    proposed = annotations_repo.list_annotations(project.conn, status="proposed")
    assert sorted(a.id for a in proposed) == sorted(again.annotation_ids)
    accepted = annotations_repo.list_annotations(project.conn, status="accepted")
    assert {a.id for a in accepted} == {kept.id, manual.id}
    assert annotations_repo.get_annotation(project.conn, kept.id).geometry == kept.geometry


def test_a_failed_rerun_leaves_the_earlier_proposals(project, detector, squares_video,
                                                     monkeypatch):
    source, _ = import_media(project, squares_video)
    version, predictor = load_predictor(project, detector.id, conf=LOW, device="cpu")
    first = _store(project, version, predictor, str(source.id), [4, 5])

    def broken(conn, anns):
        raise AnnotationError("disk said no")
    monkeypatch.setattr(annotations_repo, "add_annotations", broken)
    with pytest.raises(AnnotationError):
        _store(project, version, predictor, str(source.id), [4, 5])
    proposed = annotations_repo.list_annotations(project.conn, status="proposed")
    assert sorted(a.id for a in proposed) == sorted(first.annotation_ids)


def _proposal(project, squares_video, model_id=7, box=(10.0, 10.0, 30.0, 30.0)):
    from src.db import classes as classes_repo
    source, _ = import_media(project, squares_video)
    (frame,) = capture_frames(project, source, [0])
    red = classes_repo.ensure_class(project.conn, "red")
    blue = classes_repo.ensure_class(project.conn, "blue")
    (ann,) = proposals_repo.replace_proposals(
        project.conn, f"model:{model_id}", [frame.id],
        [Annotation(frame.id, red.id, "box", list(box), f"model:{model_id}", 0.8, "proposed")],
        [proposals_repo.ProposalDetail(track_id=3)])
    return frame, ann, red, blue


def test_review_of_proposals_is_recorded_as_corrections(project, squares_video):
    frame, ann, red, blue = _proposal(project, squares_video)
    # the tracker's own number 3 became the project's first track
    assert proposals_repo.get_details(project.conn, [ann.id])[ann.id].track_id == 1
    # moved and reclassified in one edit: accepted, with both corrections
    after = Annotation(**{**ann.__dict__, "geometry": [12.0, 10.0, 34.0, 30.0],
                          "class_id": blue.id})
    stored = proposals_repo.save_edit(project.conn, ann, after)
    assert stored.status == "accepted" and stored.class_id == blue.id
    kinds = [c.kind for c in proposals_repo.list_corrections(project.conn, "model:7")]
    assert kinds == ["moved_resized", "reclassified"]
    # a user's own box on that frame: the model missed it
    proposals_repo.add_by_user(project.conn, Annotation(frame.id, red.id, "box", [50, 5, 60, 15]))
    # another proposal, accepted as is; then one rejected
    (b,) = proposals_repo.replace_proposals(project.conn, "model:7", [], [Annotation(
        frame.id, red.id, "box", [1, 1, 9, 9], "model:7", 0.5, "proposed")])
    (c,) = proposals_repo.replace_proposals(project.conn, "model:7", [], [Annotation(
        frame.id, red.id, "box", [2, 2, 8, 8], "model:7", 0.4, "proposed")])
    assert proposals_repo.accept(project.conn, [b.id]) == 1
    assert proposals_repo.reject(project.conn, [c.id, b.id]) == 1      # b is no proposal now
    assert annotations_repo.get_annotation(project.conn, c.id) is None
    log = proposals_repo.list_corrections(project.conn, "model:7")
    assert [c.kind for c in log] == ["moved_resized", "reclassified", "added", "accepted",
                                     "deleted"]
    assert log[0].before["geometry"] == [10.0, 10.0, 30.0, 30.0]
    assert log[0].after["geometry"] == [12.0, 10.0, 34.0, 30.0]
    assert log[-1].before["confidence"] == 0.4 and log[-1].after is None


def test_a_redraw_on_the_same_pixels_is_an_acceptance(project, squares_video):
    _, ann, _, _ = _proposal(project, squares_video)
    after = Annotation(**{**ann.__dict__, "geometry": [10.2, 9.9, 30.0, 30.3]})
    assert [c.kind for c in proposals_repo.corrections_for_edit(ann, after)] == []
    after.status = "accepted"
    assert [c.kind for c in proposals_repo.corrections_for_edit(ann, after)] == ["accepted"]
    manual = Annotation(**{**ann.__dict__, "source": "manual", "status": "accepted"})
    assert proposals_repo.corrections_for_edit(manual, after) == []
