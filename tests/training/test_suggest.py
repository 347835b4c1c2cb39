"""Suggest frames: the near-duplicate signature on real demo frames, the uncertainty scores
on hand-made predictions, and the ranking over a real video and project with a scripted
model (its confidence per frame is chosen by the test, so the expected order is known)."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from src.data import demo
from src.data.capture import capture_frames, import_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db.records import Annotation
from src.errors import LabelLoopError
from src.training.inference.media import open_input
from src.training.inference.predictor import Predictor
from src.training.inference.results import ClassScore, Detection, Prediction
from src.training.suggest.ranking import LOW_CONF, candidate_frames, suggest_frames
from src.training.suggest.signature import (NEAR_DUPLICATE, frame_signature,
                                            is_near_duplicate, signature_distance)
from src.training.suggest.uncertainty import (binary_entropy, class_entropy,
                                              frame_uncertainty, matched_iou)


# ---- signature ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_frames():
    """Frames 0-11 (day) and 150-161 (night: dimmer, lower contrast) of the demo video."""
    frames = [image for image, _ in itertools.islice(demo.render(), 162)]
    return frames[:12], frames[150:]


def test_a_frame_and_its_neighbour_are_near_duplicates_by_day_and_by_night(demo_frames):
    for frames in demo_frames:
        a, b = frame_signature(frames[5]), frame_signature(frames[6])
        assert signature_distance(a, b) <= NEAR_DUPLICATE


def test_recompressing_a_frame_keeps_it_a_near_duplicate(demo_frames):
    for frames in demo_frames:
        ok, data = cv2.imencode(".jpg", frames[3], [cv2.IMWRITE_JPEG_QUALITY, 70])
        again = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert is_near_duplicate(frame_signature(again), [frame_signature(frames[3])])


def test_objects_moved_for_ten_frames_or_lighting_changed_are_not_duplicates(demo_frames):
    day, night = demo_frames
    for frames in demo_frames:     # at night too, though it differs by fewer grey levels
        assert not is_near_duplicate(frame_signature(frames[10]), [frame_signature(frames[0])])
    assert not is_near_duplicate(frame_signature(night[0]), [frame_signature(day[0])])
    assert not is_near_duplicate(frame_signature(day[0]), [])


def test_flat_frames_compare_by_grey_level_not_by_their_tiny_contrast():
    grey = np.full((48, 64, 3), 100, np.uint8)
    noisy = (grey + np.random.default_rng(0).integers(-2, 3, grey.shape)).astype(np.uint8)
    assert is_near_duplicate(frame_signature(noisy), [frame_signature(grey)])
    assert not is_near_duplicate(frame_signature(grey + 20), [frame_signature(grey)])


# ---- uncertainty -------------------------------------------------------------------------
def _det(box, conf=0.9, cls=0) -> Detection:
    return Detection("box", cls, f"c{cls}", conf, [float(v) for v in box])


def _pred(*dets) -> Prediction:
    return Prediction(100, 100, "detect", list(dets))


def test_entropies_are_zero_when_sure_and_one_when_undecided():
    assert binary_entropy(0.5) == pytest.approx(1.0)
    assert binary_entropy(1.0) == binary_entropy(0.0) == 0.0
    assert binary_entropy(0.9) == pytest.approx(binary_entropy(0.1))
    assert binary_entropy(0.9) < 0.5
    assert class_entropy([0.25, 0.25, 0.25, 0.25]) == pytest.approx(1.0)
    assert class_entropy([1.0, 0.0]) == pytest.approx(0.0)
    assert 0 < class_entropy([0.6, 0.3]) < class_entropy([0.4, 0.35])   # the rest is a bucket


def test_matched_iou_matches_one_to_one_within_a_class():
    box = [10, 10, 50, 50]
    assert matched_iou([_det(box)], [_det(box)]) == pytest.approx(1.0)
    assert matched_iou([], []) == 1.0
    assert matched_iou([_det(box)], [_det(box, cls=1)]) == 0.0          # reclassified
    assert matched_iou([_det(box)], [_det(box), _det([60, 60, 90, 90])]) == pytest.approx(0.5)
    assert matched_iou([_det(box), _det(box)], [_det(box)]) == pytest.approx(0.5)  # one-to-one
    half = matched_iou([_det(box)], [_det([30, 10, 70, 50])])
    assert half == pytest.approx(800 / 2400)


def test_an_undecided_box_is_more_uncertain_than_a_sure_one():
    sure, undecided = _pred(_det([0, 0, 9, 9], 0.95)), _pred(_det([0, 0, 9, 9], 0.5))
    assert frame_uncertainty(undecided).score > frame_uncertainty(sure).score
    nothing = frame_uncertainty(_pred())
    assert nothing.low_confidence == 1.0 and nothing.entropy == 0.0


def test_disagreement_counts_only_boxes_a_user_would_see():
    base = _pred(_det([10, 10, 50, 50], 0.9), _det([60, 60, 90, 90], 0.1))
    same = frame_uncertainty(base, _pred(_det([10, 10, 50, 50], 0.8)))
    moved = frame_uncertainty(base, _pred(_det([30, 10, 70, 50], 0.8)))
    assert same.disagreement == pytest.approx(0.0)
    assert moved.disagreement == pytest.approx(1 - 800 / 2400)
    assert moved.score > same.score


def test_a_classifier_is_scored_by_its_class_probabilities():
    sure = Prediction(8, 8, "classify", classes=[ClassScore(0, "a", 0.98), ClassScore(1, "b", 0.02)])
    torn = Prediction(8, 8, "classify", classes=[ClassScore(0, "a", 0.5), ClassScore(1, "b", 0.5)])
    assert frame_uncertainty(torn).score > frame_uncertainty(sure).score
    assert frame_uncertainty(torn, sure).disagreement == 0.0


# ---- ranking over a real video -----------------------------------------------------------
SIZE = (64, 48)
LEVELS = [20 + 20 * i for i in range(10)]      # frame i: a flat grey of LEVELS[i]


class ScriptedDetector(Predictor):
    """A model whose confidence on a frame is the test's choice: the frame is recognised
    by its grey level."""
    task, names, model_name = "detect", ["thing"], "scripted"

    def __init__(self, confidence_by_frame: dict[int, float], **options) -> None:
        super().__init__(**options)
        self.confidence_by_frame = confidence_by_frame
        self.conf_seen: list[float] = []

    def predict(self, images):
        self.conf_seen.append(self.conf)
        out = []
        for image in images:
            index = int(np.argmin([abs(float(image.mean()) - v) for v in LEVELS]))
            conf = self.confidence_by_frame.get(index, 0.99)
            dets = [_det([8, 8, 30, 30], conf)] if conf >= self.conf else []
            out.append(Prediction(SIZE[0], SIZE[1], "detect", dets))
        return out


def _write_video(path, levels):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for level in levels:
        writer.write(np.full((SIZE[1], SIZE[0], 3), level, np.uint8))
    writer.release()
    return path


@pytest.fixture
def grey_source(project, tmp_path):
    """A 10-frame video; frames 0 and 1 captured, frame 0 labelled."""
    source, _ = import_media(project, _write_video(tmp_path / "grey.avi", LEVELS))
    frames = capture_frames(project, source, [0, 1])
    cls = classes_repo.add_class(project.conn, "thing")
    annotations_repo.add_annotation(project.conn, Annotation(frames[0].id, cls.id, "box",
                                                             [1, 1, 9, 9]))
    return source, frames


def test_candidates_are_unlabelled_captured_frames_and_a_sample_of_the_rest(project,
                                                                            grey_source):
    source, frames = grey_source
    candidates = candidate_frames(project, source.id, 10, samples=3)
    assert candidates[1] == frames[1].id and 0 not in candidates
    assert [i for i, fid in candidates.items() if fid is None] == [2, 6, 9]
    assert len(candidate_frames(project, source.id, 10, samples=100)) == 9
    assert list(candidate_frames(project, source.id, 10, 100, within=[0, 1, 5])) == [1, 5]


def test_frames_are_ranked_by_uncertainty_and_carry_their_frame_id(project, grey_source):
    source, frames = grey_source
    model = ScriptedDetector({4: 0.5, 7: 0.7, 1: 0.8, 9: 0.97}, conf=0.25)
    with open_input(str(source.id), project) as media:
        report = suggest_frames(project, media, model, count=3)
    assert [s.frame_index for s in report.suggestions] == [4, 7, 1]
    assert report.suggestions[2].frame_id == frames[1].id
    assert report.suggestions[0].frame_id is None
    scores = [s.score for s in report.suggestions]
    assert scores == sorted(scores, reverse=True)
    assert report.labelled == 1 and report.candidates == 9
    assert model.conf_seen and set(model.conf_seen) == {LOW_CONF} and model.conf == 0.25


def test_near_duplicates_of_labelled_or_picked_frames_are_skipped(project, tmp_path):
    # frames 3 and 4 repeat the labelled frame 0; frames 6 and 7 repeat each other.
    levels = [40, 80, 120, 40, 40, 160, 200, 200, 240, 100]
    source, _ = import_media(project, _write_video(tmp_path / "dups.avi", levels))
    (frame0,) = capture_frames(project, source, [0])
    cls = classes_repo.add_class(project.conn, "thing")
    annotations_repo.add_annotation(project.conn, Annotation(frame0.id, cls.id, "tag"))
    by_level = {LEVELS.index(v): c for v, c in ((40, 0.45), (120, 0.5), (200, 0.6))}
    model = ScriptedDetector(by_level)
    with open_input(str(source.id), project) as media:
        report = suggest_frames(project, media, model, count=3)
    picked = [s.frame_index for s in report.suggestions]
    assert picked[:2] == [2, 6] and 3 not in picked and 4 not in picked and 7 not in picked
    assert report.skipped_duplicates == 3            # frames 3, 4 and 7
    assert report.suggestions[0].nearest_labelled > NEAR_DUPLICATE


def test_bad_count_is_a_typed_error(project, grey_source):
    source, _ = grey_source
    with open_input(str(source.id), project) as media, pytest.raises(LabelLoopError,
                                                                      match="--count"):
        suggest_frames(project, media, ScriptedDetector({}), count=0)
