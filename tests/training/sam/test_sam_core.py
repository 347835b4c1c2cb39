"""SAM core on an untrained SAM 2 tiny at 128 px: prompt → mask → polygon in original
pixels, candidates, the embedding cache, tracking into proposals, cancel, weights lookup."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.db.classes import add_class
from src.errors import AnnotationError
from src.training.sam.embeddings import EmbeddingCache
from src.training.sam.polygon import mask_iou, mask_to_polygon, polygon_to_mask
from src.training.sam.prompts import PointPrompt, Prompt, check_prompt
from src.training.sam.session import TrackSession
from src.training.sam.store import store_tracked, track_source
from src.training.sam.weights import SamWeightsMissing, find_weights
from tests.training.sam.conftest import VIDEO_FRAMES, square_frame, square_mask


def test_missing_weights_name_the_file_and_folder(tmp_path):
    with pytest.raises(SamWeightsMissing) as err:
        find_weights("sam2_t", tmp_path / "base")
    assert "sam2_t.pt" in str(err.value) and str(tmp_path / "base") in str(err.value)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "sam2_t.pt").write_bytes(b"x")
    assert find_weights("sam2_t", tmp_path / "base").path == tmp_path / "base" / "sam2_t.pt"


def test_polygon_is_in_original_pixels_whatever_the_frame_size():
    for h, w in ((64, 96), (600, 1000)):
        mask = np.zeros((h, w), bool)
        mask[h // 4: h // 2, w // 3: w // 2] = True
        poly = mask_to_polygon(mask, tolerance=1.0)
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        assert (min(xs), max(xs), min(ys), max(ys)) == (w // 3, w // 2 - 1, h // 4, h // 2 - 1)
        assert mask_iou(polygon_to_mask(poly, h, w), mask) > 0.9


def test_tolerance_simplifies():
    mask = np.zeros((100, 100), np.uint8)
    import cv2
    cv2.circle(mask, (50, 50), 40, 1, -1)
    fine, coarse = mask_to_polygon(mask.astype(bool), 0.5), mask_to_polygon(mask.astype(bool), 5)
    assert len(coarse) < len(fine)


def test_prompt_outside_the_frame_is_a_typed_error():
    with pytest.raises(AnnotationError, match="outside"):
        check_prompt(Prompt([PointPrompt(200, 5)]), 64, 96)
    with pytest.raises(AnnotationError):
        check_prompt(Prompt(), 64, 96)


def test_prompt_gives_candidates_with_iou_in_original_pixels(sam2_engine):
    emb = sam2_engine.embed(square_frame(0))
    cands = sam2_engine.segment(emb, Prompt([PointPrompt(20, 28)], box=[10, 16, 34, 40]))
    assert len(cands) == 3
    assert [c.iou for c in cands] == sorted((c.iou for c in cands), reverse=True)
    assert all(c.mask.shape == (64, 96) and c.mask.dtype == bool for c in cands)
    single = sam2_engine.segment(emb, Prompt([PointPrompt(20, 28)]), multimask=False)
    assert len(single) == 1


def test_embeddings_are_cached_in_memory_and_on_disk(sam2_engine, tmp_path):
    cache = EmbeddingCache(sam2_engine, tmp_path / "cache", max_bytes=1)
    first = cache.get_or_compute(3, 0, lambda: square_frame(0))
    cache.get_or_compute(3, 1, lambda: square_frame(1))
    assert cache.computed == 2 and len(cache._memory) == 1      # bounded: one entry fits
    assert sorted(p.name for p in (tmp_path / "cache" / "3").iterdir()) == ["0.pt", "1.pt"]
    again = EmbeddingCache(sam2_engine, tmp_path / "cache").get_or_compute(
        3, 0, lambda: pytest.fail("the encoder ran again"))
    prompt = Prompt([PointPrompt(20, 28)])
    a, b = sam2_engine.segment(first, prompt), sam2_engine.segment(again, prompt)
    assert mask_iou(a[0].mask, b[0].mask) > 0.95      # fp16 on disk, same masks


def _session(engine, folder, source, project):
    from src.data.video import open_media
    reader = open_media(source.path, cache_bytes=0)
    cache = EmbeddingCache(engine, folder)
    return TrackSession(cache, source.id, reader.frame_count, reader.read), reader


@pytest.mark.slow
def test_tracking_stores_proposals_with_confidence(present_engine, shared_embeddings,
                                                   project, square_source, tmp_path):
    folder = tmp_path / "cache"
    shutil.copytree(shared_embeddings, folder)
    session, reader = _session(present_engine, folder, square_source, project)
    cls = add_class(project.conn, "square")
    start = session.start_from_mask(0, square_mask(0))
    assert start.conditioned and start.mask.sum() > 0
    tracked = session.propagate(5)
    assert [t.frame_index for t in tracked] == [1, 2, 3, 4, 5]
    summary = store_tracked(project, square_source, cls.id, 7, "sam2_t", tracked, reader.read)
    assert summary.frames == 5 and summary.proposals == sum(t.present and t.mask.any()
                                                            for t in tracked)
    assert summary.proposals > 0
    for ann_id, conf in zip(summary.annotation_ids, summary.confidences):
        ann = annotations_repo.get_annotation(project.conn, ann_id)
        assert ann.status == "proposed" and ann.kind == "polygon"
        assert ann.source == track_source("sam2_t", 7) and 0 <= ann.confidence <= 1
        assert ann.confidence == pytest.approx(conf)
    details = proposals_repo.get_details(project.conn, summary.annotation_ids)
    assert len({d.track_id for d in details.values()}) == 1
    # re-tracking replaces this object's proposals, nothing else
    again = store_tracked(project, square_source, cls.id, 7, "sam2_t", tracked, reader.read)
    frame_ids = [frames_repo.get_frame_at(project.conn, square_source.id, i).id
                 for i in range(1, 6)]
    stored = [a for f in frame_ids for a in annotations_repo.list_annotations(project.conn, f)]
    assert sorted(a.id for a in stored) == sorted(again.annotation_ids)
    reader.close()


@pytest.mark.slow
def test_tracking_stops_when_asked(present_engine, shared_embeddings, project,
                                   square_source, tmp_path):
    folder = tmp_path / "cache"
    shutil.copytree(shared_embeddings, folder)
    session, reader = _session(present_engine, folder, square_source, project)
    session.start_from_mask(0, square_mask(0))
    seen = []
    tracked = session.propagate(VIDEO_FRAMES - 1, should_stop=lambda: len(seen) >= 2,
                                on_mask=seen.append)
    assert [t.frame_index for t in tracked] == [1, 2]
    more = session.propagate(4)              # picks up where it stopped
    assert [t.frame_index for t in more] == [3, 4]
    reader.close()


@pytest.mark.slow
def test_correction_reconditions_and_repropagates(present_engine, shared_embeddings, project,
                                                  square_source, tmp_path):
    folder = tmp_path / "cache"
    shutil.copytree(shared_embeddings, folder)
    seen = []
    session, reader = _session(present_engine, folder, square_source, project)
    session.on_correction = lambda i, tracker, prompt, tracked: seen.append(
        (i, tracker.last_inputs is not None, tracked.conditioned))
    session.start_from_mask(0, square_mask(0))
    session.propagate(4)
    fixed = session.correct(2, Prompt([PointPrompt(16, 28), PointPrompt(80, 50, False)]))
    assert fixed.conditioned and seen == [(2, True, True)]
    assert sorted(session.masks) == [0, 1, 2]        # 3 and 4 are redone from the correction
    assert [t.frame_index for t in session.propagate(4)] == [3, 4]
    reader.close()


def test_mobile_sam_gives_candidates_but_cannot_track():
    from src.errors import ModelError
    from src.training.sam.engine import SamEngine
    from src.training.sam.tracker import MaskTracker
    engine = SamEngine.load(find_weights("mobile_sam", "/nonexistent", untrained=True),
                            image_size=128)
    cands = engine.segment(engine.embed(square_frame(0)), Prompt([PointPrompt(20, 28)]))
    assert len(cands) == 3 and cands[0].mask.shape == (64, 96)
    with pytest.raises(ModelError, match="SAM 2"):
        MaskTracker(engine, 10)
