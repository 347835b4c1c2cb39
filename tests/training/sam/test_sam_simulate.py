"""The simulated annotator of the SAM quality benchmark: the click rule on hand-made masks,
clicking on the untrained SAM 2 tiny (128 px), the demo's ground truth, and one short
session without and with LIT-LoRA (the structure that must hold whatever the weights)."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from src.training.learning.early_stop import StopRules
from src.training.sam import simulate
from src.training.sam.lit_lora import LitLoraSettings
from src.training.sam.prompts import PointPrompt, Prompt
from src.training.sam.simulate import annotate, iou, next_click
from tests.training.sam.conftest import square_frame, square_mask

SHAPE = (60, 90)


def disc(cx: int, cy: int, r: int) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    return mask.astype(bool)


def empty() -> np.ndarray:
    return np.zeros(SHAPE, bool)


def test_iou():
    a, b = disc(30, 30, 10), disc(60, 30, 10)
    assert iou(a, a) == 1.0 and iou(a, b) == 0.0 and iou(empty(), empty()) == 1.0
    half = a.copy()
    half[:, 30:] = False
    assert iou(half, a) == pytest.approx(half.sum() / a.sum())


def test_missed_region_gets_a_positive_click_at_its_centre():
    assert next_click(empty(), disc(40, 25, 10)) == PointPrompt(40.0, 25.0, True)
    # the part of the object the mask missed, not the part it has
    truth, pred = disc(40, 25, 10), disc(40, 25, 10)
    pred[:, :40] = False
    click = next_click(pred, truth)
    assert click.positive and not pred[int(click.y), int(click.x)]
    assert truth[int(click.y), int(click.x)] and click.x < 40


def test_false_positive_region_gets_a_negative_click_at_its_centre():
    assert next_click(disc(50, 30, 12), empty()) == PointPrompt(50.0, 30.0, False)


def test_no_error_no_click():
    assert next_click(disc(50, 30, 12), disc(50, 30, 12)) is None
    assert next_click(empty(), empty()) is None


def test_the_largest_error_region_is_clicked():
    truth = disc(20, 20, 6) | disc(60, 30, 12)            # two missed regions
    assert next_click(empty(), truth) == PointPrompt(60.0, 30.0, True)
    # a small missed region against a large false-positive one: the negative click wins
    pred = disc(60, 30, 12)
    assert next_click(pred, disc(15, 15, 5)) == PointPrompt(60.0, 30.0, False)


def test_the_frame_edge_counts_as_boundary():
    truth = empty()
    truth[:, :21] = True                                   # a band along the left edge
    click = next_click(empty(), truth)
    assert click.positive and click.x == 10.0              # its middle, not column 0


def test_annotate_stops_at_the_target_when_the_first_mask_is_the_truth(sam2_engine):
    emb = sam2_engine.embed(square_frame(0))
    first = Prompt([PointPrompt(22, 28)])
    truth = sam2_engine.segment(emb, first)[0].mask
    assert truth.any() and not truth.all()                  # a real mask, not a trivial one
    result = annotate(sam2_engine, emb, truth, first=first, max_clicks=5)
    assert result.clicks == 1 and result.prompt == first
    assert result.iou_before == 0.0 and result.iou_after == 1.0 and result.reached()
    # a start mask already good enough costs no click
    again = annotate(sam2_engine, emb, truth, start=truth, max_clicks=5)
    assert again.clicks == 0 and again.prompt.empty and again.iou_before == 1.0


def test_annotate_clicks_by_the_rule_until_max_clicks(sam2_engine):
    emb = sam2_engine.embed(square_frame(0))
    truth = square_mask(0)
    result = annotate(sam2_engine, emb, truth, target_iou=0.999, max_clicks=3)
    assert result.clicks == 3 == len(result.prompt.points) and not result.reached(0.999)
    assert result.iou_after == iou(result.mask, truth) < 0.999
    mask = np.zeros(truth.shape, bool)                     # nothing shown before a click
    for k, point in enumerate(result.prompt.points):       # each click follows the last mask
        assert point == next_click(mask, truth)
        mask = sam2_engine.segment(emb, Prompt(result.prompt.points[:k + 1]))[0].mask
    assert (mask == result.mask).all()


def test_demo_truth_is_the_visible_polygon():
    images, truths, visible = simulate.demo_truth(3)
    assert len(images) == len(truths) == 3 and images[0].shape == (240, 320, 3)
    assert visible == [1.0, 1.0, 1.0]
    area = truths[0].sum()
    assert abs(area - np.pi * 16 ** 2) < 0.1 * area         # the first circle, radius 16
    assert not (truths[0] == truths[2]).all()                 # it moves
    # an object drawn over it is cut out of its truth
    square = np.array([[10, 10], [40, 10], [40, 40], [10, 40]], float)
    objects = [("square", square, 1.0), ("circle", square + 15, 1.0)]
    cut = simulate._visible_mask((60, 60), objects, 0)
    assert cut[12, 12] and not cut[30, 30] and cut.sum() < 31 * 31


@pytest.mark.slow
def test_quality_run_without_and_with_lit_lora(present_engine):
    engine = present_engine
    images, truths, _ = simulate.demo_truth(5)
    embs = [engine.embed(image) for image in images]
    before = {k: v.clone() for k, v in engine.base_decoder.state_dict().items()}
    settings = LitLoraSettings(rules=dataclasses.replace(StopRules.lit_lora(), max_epochs=2))
    off, on = simulate.compare(engine, embs, truths, correct=2, evaluate=2, max_clicks=2,
                               settings=settings, budget_s=60)
    assert off.start is on.start and 1 <= on.start.clicks <= 2
    for run in (off, on):
        assert set(run.corrections) == {1, 2} and set(run.evaluation) == {3, 4}
        assert all(r.clicks <= 2 for r in [*run.corrections.values(), *run.evaluation.values()])
        assert run.clicks_per_frame == np.mean([r.clicks for r in run.evaluation.values()])
        assert run.proposal_iou == np.mean([r.iou_before for r in run.evaluation.values()])
        assert not run.skipped
        assert run.reached == sum(r.iou_after >= 0.9 for r in run.evaluation.values())
    # before the update both sessions are the same (deterministic, same start)
    assert [(r.clicks, r.iou_before, r.iou_after) for r in off.corrections.values()] == \
        [(r.clicks, r.iou_before, r.iou_after) for r in on.corrections.values()]
    corrected = sum(r.clicks > 0 for r in on.corrections.values())
    assert corrected and on.samples == corrected and off.samples == 0
    assert off.outcome is None and not off.adapted and off.update_s == 0.0
    assert on.outcome is not None and on.outcome.epochs >= 1 and on.adapted
    after = engine.base_decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # the base is untouched
    assert engine.decoder is engine.base_decoder


def test_quality_run_needs_enough_frames(sam2_engine):
    with pytest.raises(ValueError, match="needs 5 frames"):
        simulate.quality_run(sam2_engine, [], [], correct=2, evaluate=2, lit_lora=False)
