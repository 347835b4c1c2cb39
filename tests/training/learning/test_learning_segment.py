"""The learning loop on a segmentation base (a tiny untrained yolov8n-seg, 64 px frames of a
triangle polygon and a square box): samples keep polygons, a background update changes the
polygon proposals, a worse adapter is left unused, promotion makes a segment version with
lineage, reopening the project keeps the session."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from src.db import annotations as annotations_repo
from src.db.project import Project
from src.errors import ModelError
from src.training.inference.loading import predictor_for
from src.training.learning import detector_update
from src.training.learning.edits import EditCounts
from src.training.learning.session import LearningSession
from src.training.learning.settings import LearnSettings
from src.training.models import ModelManager
from tests.training.learning.learning_fixtures import (make_polygon_source, make_seg_base,
                                                       squares, triangle)

pytestmark = pytest.mark.slow
FAST = dict(max_epochs=2, update_every=0, lr=1e-2, batch=4, budget_s=60)


def polygon_outputs(predictor, image) -> list[np.ndarray]:
    """The top proposals at a near-zero threshold, as polygons with their confidence (an
    untrained model proposes nothing at 0.25, but its masks move when its weights do)."""
    predictor.conf = 0.001
    found = predictor.predict_one(image).detections[:5]
    assert found and all(d.kind == "polygon" and len(d.polygon) >= 3 for d in found)
    return [np.array([*np.ravel(d.polygon), d.confidence]) for d in found]


def same(a: list[np.ndarray], b: list[np.ndarray], atol: float) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, atol=atol)
                                    for x, y in zip(a, b))


def test_segment_session_updates_promotes_and_reopens(project):
    source, frames = make_polygon_source(project, 8)
    base = make_seg_base(project)
    threads = []
    # the head trains in full: adapters alone on an untrained model move the outputs by less
    # than the fp16 rounding of the promoted file, which the test compares against
    session = LearningSession.open(project, source.id, base.id,
                                   settings=LearnSettings(**FAST, train_head=True),
                                   on_progress=lambda p: threads.append(
                                       threading.current_thread()))
    image = cv2.imread(str(project.abspath(frames[7].image_path)))
    before = polygon_outputs(session.predictor(), image)

    for frame in frames[:6]:
        session.frame_corrected(frame.id, EditCounts(moved_resized=1, added=1))
    sample = session.samples.get(f"frame-{frames[0].id}")
    assert list(sample.arrays["polygon_sizes"]) == [3, 4]      # triangle; box as rectangle
    assert np.allclose(sample.arrays["polygon_points"][:3], triangle(0))
    x1, y1, x2, y2 = squares(0)["blue"]
    assert np.allclose(sample.arrays["polygon_points"][3:],
                       [[x1, y1], [x2, y1], [x2, y2], [x1, y2]])

    assert session.request_update() == "started"
    assert session.wait(240)
    assert threads and all(t is not threading.main_thread() for t in threads)
    status = session.status()
    assert status.updates == 1 and status.adapter_in_use
    assert "mask proposal score" in status.reason and status.last_base_metric == 0.0
    assert session.adapters.meta().metric_name == "mask_proposal_score"
    adapted = polygon_outputs(session.predictor(), image)
    assert not same(before, adapted, 1e-3)
    summary = session.propose([frames[7].id])
    stored = annotations_repo.list_annotations(project.conn, frames[7].id, status="proposed")
    assert summary.proposals == len(stored) > 0 and all(a.kind == "polygon" for a in stored)

    session.close()
    project.close()
    reopened = Project.open(project.root)
    try:
        again = LearningSession.open(reopened, source.id, base.id)
        assert again.record.id == session.record.id and again.task.name == "segment"
        assert again.status().corrected_frames == 6 and again.status().adapter_in_use
        assert same(polygon_outputs(again.predictor(), image), adapted, 1e-3)
        # the update's AdamW moments came back with the adapter: the next update continues them
        moments, kept = session._optimizer_state["state"], again._optimizer_state["state"]
        assert moments and kept.keys() == moments.keys()
        assert all(torch.equal(kept[k]["exp_avg"], moments[k]["exp_avg"]) for k in moments)

        version = again.promote("triangles-learned")
        assert version.task == "segment" and version.parent_id == base.id
        assert version.lineage[0]["display_name"] == base.display_name
        ModelManager(reopened).weights_path(version)         # every file verified
        promoted = predictor_for(reopened, version, imgsz=again.imgsz, device="cpu")
        assert promoted.task == "segment"
        # the promoted file is fp16: compare the confidences and the number of proposals
        got = polygon_outputs(promoted, image)
        assert len(got) == len(adapted)
        assert np.allclose([g[-1] for g in got], [a[-1] for a in adapted], atol=2e-2)
    finally:
        reopened.close()


def test_segment_adapter_worse_than_the_base_is_not_used(project, monkeypatch):
    source, frames = make_polygon_source(project, 6)
    base = make_seg_base(project)
    # A base that gets every validation polygon right: no tiny adapter can match that.
    monkeypatch.setattr(detector_update.DetectorUpdate, "_base_score", lambda self, s: 1.0)
    session = LearningSession.open(project, source.id, base.id, settings=LearnSettings(**FAST))
    image = cv2.imread(str(project.abspath(frames[0].image_path)))
    before = polygon_outputs(session.predictor(), image)
    for frame in frames:
        session.frame_corrected(frame.id, EditCounts(added=2))
    session.request_update()
    assert session.wait(240)
    status = session.status()
    assert status.updates == 1 and status.last_base_metric == 1.0
    assert status.last_val_metric < 1.0
    assert not status.adapter_in_use and "did worse than the base" in status.reason
    assert not session.adapters.exists()
    assert same(polygon_outputs(session.predictor(), image), before, 1e-6)
    with pytest.raises(ModelError, match="no adapter in use"):
        session.promote("worse")


def test_a_classifier_base_is_refused(project):
    from ultralytics.nn.tasks import DetectionModel

    from tests.training.learning.learning_fixtures import _register

    source, _frames = make_polygon_source(project, 2)
    other = _register(project, DetectionModel("yolov8n.yaml", nc=2, verbose=False), "classify",
                      "not-a-detector", 64)
    with pytest.raises(ModelError, match="detectors and segmenters"):
        LearningSession.open(project, source.id, other.id)
