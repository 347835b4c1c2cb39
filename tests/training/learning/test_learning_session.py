"""The detector learning loop on a tiny untrained model and a handful of frames: corrections
recorded, a background update that changes the proposals, a worse adapter left unused,
promotion with lineage, reopening the project."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from src.db import learning as learning_repo
from src.db.project import Project
from src.errors import MediaError, ModelError
from src.training.inference.loading import predictor_for
from src.training.learning import detector_update
from src.training.learning.edits import EditCounts
from src.training.learning.session import LearningSession
from src.training.learning.settings import LearnSettings
from src.training.models import ModelManager
from tests.training.learning.learning_fixtures import make_base, make_source

pytestmark = pytest.mark.slow
FAST = dict(max_epochs=2, update_every=0, lr=1e-2, batch=4, budget_s=60)


def raw_outputs(predictor, image) -> np.ndarray:
    """The top boxes and scores at a near-zero threshold (an untrained model proposes
    nothing at the usual 0.25, but its outputs still move when its weights do)."""
    predictor.conf = 0.001
    found = predictor.predict_one(image).detections[:5]
    return np.array([[*d.box, d.confidence, d.class_id] for d in found])


def image_of(project, frame):
    return cv2.imread(str(project.abspath(frame.image_path)))


def test_corrections_update_in_background_promote_and_reopen(project, tmp_path):
    source, frames = make_source(project, 8)
    base = make_base(project)
    threads = []
    # the head trains in full here: on an untrained model, adapters alone move the outputs by
    # less than the fp16 rounding of the promoted file, which the test compares against
    settings = LearnSettings(**FAST, train_head=True)
    session = LearningSession.open(project, source.id, base.id, settings=settings,
                                   on_progress=lambda p: threads.append(threading.current_thread()))
    assert session.request_update() == "waiting"            # nothing corrected yet
    image = image_of(project, frames[7])
    before = raw_outputs(session.predictor(), image)

    session.frame_corrected(frames[0].id, EditCounts(added=2))
    session.frame_corrected(frames[1].id, {"moved_resized": 1, "deleted": 3, "added": 1})
    for frame in frames[2:6]:
        session.frame_corrected(frame.id, EditCounts(accepted=1, reclassified=1))
    rows = {r.frame_id: r for r in learning_repo.corrected_frames(project.conn, session.record.id)}
    assert len(rows) == 6 and rows[frames[1].id].deleted == 3 and rows[frames[1].id].edits == 5
    assert session.status().corrected_frames == 6 and not session.status().adapter_in_use

    assert session.request_update() == "started"
    assert session.wait(240)
    assert threads and all(t is not threading.main_thread() for t in threads)
    status = session.status()
    # the untrained base proposes nothing at conf 0.25: scored 0, an adapter cannot do worse
    assert status.updates == 1 and status.adapter_in_use and "in use" in status.reason
    assert status.last_val_metric is not None and status.last_base_metric == 0.0
    adapted = raw_outputs(session.predictor(), image)
    assert before.shape != adapted.shape or not np.allclose(before, adapted, atol=1e-3)

    session.close()
    project.close()
    reopened = Project.open(project.root)
    try:
        again = LearningSession.open(reopened, source.id, base.id)
        assert again.record.id == session.record.id
        assert again.status().corrected_frames == 6 and again.status().adapter_in_use
        assert np.allclose(raw_outputs(again.predictor(), image), adapted, atol=1e-4)

        version = again.promote("squares-learned")
        assert version.parent_id == base.id and version.origin == "adapted"
        assert version.lineage[0]["display_name"] == base.display_name
        ModelManager(reopened).weights_path(version)         # every file verified
        promoted = predictor_for(reopened, version, imgsz=again.imgsz, device="cpu")
        assert np.allclose(raw_outputs(promoted, image), adapted, atol=2e-2)  # fp16 file
        assert again.status().state == "promoted"
        fresh = LearningSession.open(reopened, source.id, base.id)
        assert fresh.record.id != again.record.id and fresh.status().corrected_frames == 0
    finally:
        reopened.close()


def test_adapter_worse_than_the_base_is_not_used(project, monkeypatch):
    source, frames = make_source(project, 6)
    base = make_base(project)
    # A base that gets every validation frame right: no tiny adapter can match that.
    monkeypatch.setattr(detector_update.DetectorUpdate, "_base_score", lambda self, s: 1.0)
    session = LearningSession.open(project, source.id, base.id, settings=LearnSettings(**FAST))
    image = image_of(project, frames[0])
    before = raw_outputs(session.predictor(), image)
    for frame in frames:
        session.frame_corrected(frame.id, EditCounts(added=2))
    session.request_update()
    assert session.wait(240)
    status = session.status()
    assert status.updates == 1 and status.last_base_metric == 1.0
    assert status.last_val_metric < 1.0
    assert not status.adapter_in_use and "did worse than the base" in status.reason
    assert not session.adapters.exists()
    assert np.allclose(raw_outputs(session.predictor(), image), before)
    with pytest.raises(ModelError, match="no adapter in use"):
        session.promote("worse")
    session.discard()
    assert session.status().state == "discarded" and len(session.samples) == 0


def test_edit_counts_from_the_store_and_bad_frames(project):
    from src.db import proposals as proposals_repo

    source, frames = make_source(project, 3)
    other, other_frames = make_source_elsewhere(project)
    base = make_base(project)
    assert LearningSession.existing(project, source.id, base.id) is None
    session = LearningSession.open(project, source.id, base.id, settings=LearnSettings(**FAST))
    assert LearningSession.existing(project, source.id).record.id == session.record.id
    proposals_repo.add_corrections(project.conn, [
        proposals_repo.Correction(frames[0].id, f"model:{base.id}", "deleted"),
        proposals_repo.Correction(frames[0].id, f"model:{base.id}", "deleted"),
        proposals_repo.Correction(frames[0].id, f"model:{base.id}", "accepted")])
    row = session.frame_corrected(frames[0].id)
    assert (row.deleted, row.accepted, row.added) == (2, 1, 0)
    sample = session.samples.get(f"frame-{frames[0].id}")
    assert sample.arrays["boxes"].shape == (2, 4) and sorted(sample.arrays["classes"]) == [0, 1]
    with pytest.raises(MediaError):
        session.frame_corrected(other_frames[0].id)


def make_source_elsewhere(project):
    from src.data.capture import import_media

    folder = project.root.parent / "other"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.zeros((32, 32, 3), np.uint8))
    return import_media(project, folder)


def test_predict_in_another_thread_reads_on_its_own_connection(project):
    """A GUI worker predicts while the session's thread is inside a transaction: predict
    sees the committed store, not the other thread's unfinished work, and stores nothing;
    store_proposals (the session's thread) writes only on the frames it is given."""
    from src.db import annotations as annotations_repo
    from src.db import frames as frames_repo
    from src.db.connection import transaction

    source, frames = make_source(project, 3, annotate=False)
    base = make_base(project)
    session = LearningSession.open(project, source.id, base.id,
                                   settings=LearnSettings(conf=0.001, **FAST))
    ids = [frames[0].id, frames[1].id]
    found: dict = {}

    class Rollback(Exception):
        pass

    try:
        with pytest.raises(Rollback):
            with transaction(project.conn):
                frames_repo.delete_frames(project.conn, [frames[0].id])   # not committed
                worker = threading.Thread(target=lambda: found.update(
                    batch=session.predict(ids), thread=threading.get_ident()))
                worker.start()
                worker.join(60)
                raise Rollback
        batch = found["batch"]
        assert found["thread"] != threading.get_ident() and batch.frame_ids == ids
        assert all(f.prediction.detections for f in batch.frames)    # near-zero threshold
        assert not annotations_repo.list_annotations(project.conn, frames[1].id)
        summary = session.store_proposals(batch, [frames[1].id])
        stored = annotations_repo.list_annotations(project.conn, frames[1].id, status="proposed")
        assert summary.proposals == len(stored) == len(batch.frames[1].prediction.detections)
        assert not annotations_repo.list_annotations(project.conn, frames[0].id)
        assert batch.model_name == session.predictor().model_name
    finally:
        session.close()
