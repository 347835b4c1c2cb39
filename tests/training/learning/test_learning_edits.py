"""The simulated annotator's edit counting on hand-made frames, with boxes and with polygons."""
from __future__ import annotations

from src.training.learning.edits import (EditCounts, Shape, count_edits, count_mask_edits,
                                         mask_ious, proposal_score, rasterise)

A = Shape((0, 0, 10, 10), "square")


def box(x1, y1, x2, y2, cls="square"):
    return Shape((x1, y1, x2, y2), cls)


def test_exact_match_is_free():
    counts = count_edits([box(0, 0, 10, 10)], [A])
    assert counts == EditCounts(accepted=1) and counts.edits == 0


def test_iou_at_least_0_7_same_class_is_free():
    counts = count_edits([box(0, 0, 10, 7.5)], [A])          # IoU 0.75
    assert counts == EditCounts(accepted=1)


def test_class_change_costs_one():
    assert count_edits([box(0, 0, 10, 10, "circle")], [A]) == EditCounts(reclassified=1)


def test_adjustment_costs_one():
    counts = count_edits([box(0, 0, 10, 5)], [A])            # IoU 0.5
    assert counts == EditCounts(moved_resized=1) and counts.edits == 1


def test_adjustment_and_class_change_cost_two():
    assert count_edits([box(0, 0, 10, 5, "circle")], [A]).edits == 2


def test_missing_and_spurious_cost_one_each():
    assert count_edits([], [A]) == EditCounts(added=1)
    assert count_edits([box(50, 50, 60, 60)], []) == EditCounts(deleted=1)
    far = count_edits([box(0, 0, 10, 2.5)], [A])              # IoU 0.25 < 0.3: no match
    assert far == EditCounts(deleted=1, added=1)


def test_empty_frames():
    assert count_edits([], []) == EditCounts()
    assert proposal_score(EditCounts(), 0, 0) == 1.0


def test_tie_two_proposals_on_one_box():
    counts = count_edits([box(0, 0, 10, 10), box(0, 0, 10, 10)], [A])
    assert counts == EditCounts(accepted=1, deleted=1)


def test_tie_prefers_the_higher_iou_and_fewest_edits():
    # proposal 0 fits truth 0 loosely (IoU 0.5) and truth 1 well; a greedy pass taking the
    # first truth box first would pay an adjustment and a miss, the fewest edits is one miss
    truth = [box(0, 0, 10, 10), box(0, 0, 10, 5)]
    counts = count_edits([box(0, 0, 10, 5)], truth)
    assert counts == EditCounts(accepted=1, added=1)


def test_order_of_boxes_does_not_change_the_count():
    truth = [box(0, 0, 10, 10), box(20, 0, 30, 10, "circle"), box(40, 0, 50, 10)]
    props = [box(41, 0, 50, 10), box(0, 0, 10, 6), box(20, 0, 30, 10, "square"),
             box(80, 80, 90, 90)]
    forward, backward = count_edits(props, truth), count_edits(props[::-1], truth[::-1])
    assert forward == backward == EditCounts(accepted=1, moved_resized=1, reclassified=1,
                                             deleted=1)


def test_proposal_score_bounds():
    assert proposal_score(count_edits([A], [A]), 1, 1) == 1.0
    assert proposal_score(count_edits([], [A, A]), 0, 2) == 0.0
    assert proposal_score(count_edits([box(0, 0, 10, 5, "circle")], [A]), 1, 1) == 0.0
    assert 0 < proposal_score(count_edits([A, box(50, 50, 60, 60)], [A]), 2, 1) < 1


# -- polygons: the same edits with mask IoU (shapes rasterised at the frame's size) --------
FRAME = (40, 40)


def poly(points, cls="circle"):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return Shape((min(xs), min(ys), max(xs), max(ys)), cls, tuple(map(tuple, points)))


SQUARE_POLY = poly([(0, 0), (20, 0), (20, 20), (0, 20)])
LOWER_LEFT = poly([(0, 0), (0, 20), (20, 20)])           # half of the square, same box
UPPER_RIGHT = poly([(0, 0), (20, 0), (20, 20)])          # the other half, same box


def test_polygon_masks_and_their_iou():
    assert rasterise(SQUARE_POLY, FRAME).sum() == 400
    assert rasterise(Shape((0, 0, 20, 20), "circle"), FRAME).sum() == 400   # a box: its rectangle
    half = rasterise(LOWER_LEFT, FRAME).sum()
    assert 190 <= half <= 210
    ious = mask_ious([rasterise(SQUARE_POLY, FRAME)], [rasterise(LOWER_LEFT, FRAME)])
    assert ious.shape == (1, 1) and abs(ious[0, 0] - half / 400) < 1e-6


def test_polygon_accept_is_free():
    shifted = poly([(1, 0), (21, 0), (21, 20), (1, 20)])                   # IoU 0.9
    assert count_mask_edits([shifted], [SQUARE_POLY], FRAME) == EditCounts(accepted=1)


def test_polygon_class_change_costs_one():
    assert count_mask_edits([poly(SQUARE_POLY.polygon, "square")], [SQUARE_POLY],
                            FRAME) == EditCounts(reclassified=1)


def test_polygon_adjustment_uses_the_mask_not_the_box():
    # the triangle and the square share their bounding box (box IoU 1: accepted as boxes),
    # but the triangle covers half the square's mask: 0.3 <= IoU < 0.7, one adjustment
    assert count_edits([LOWER_LEFT], [SQUARE_POLY]) == EditCounts(accepted=1)
    assert count_mask_edits([LOWER_LEFT], [SQUARE_POLY], FRAME) == EditCounts(moved_resized=1)
    assert count_mask_edits([LOWER_LEFT], [Shape((0, 0, 20, 20), "circle")],
                            FRAME) == EditCounts(moved_resized=1)


def test_polygon_missing_and_spurious_cost_one_each():
    assert count_mask_edits([], [SQUARE_POLY], FRAME) == EditCounts(added=1)
    assert count_mask_edits([SQUARE_POLY], [], FRAME) == EditCounts(deleted=1)
    # opposite halves of one box: box IoU 1, mask IoU ~0: a miss and a spurious shape
    assert count_mask_edits([UPPER_RIGHT], [LOWER_LEFT], FRAME) == EditCounts(deleted=1,
                                                                            added=1)


def test_polygon_ties_and_empty_frames():
    assert count_mask_edits([], [], FRAME) == EditCounts()
    counts = count_mask_edits([SQUARE_POLY, SQUARE_POLY], [SQUARE_POLY], FRAME)
    assert counts == EditCounts(accepted=1, deleted=1)
    # one proposal fits the triangle exactly and the square loosely: the fewest edits is one
    # miss (the square), not an adjustment plus a miss
    counts = count_mask_edits([LOWER_LEFT], [SQUARE_POLY, LOWER_LEFT], FRAME)
    assert counts == EditCounts(accepted=1, added=1)
    backward = count_mask_edits([LOWER_LEFT], [LOWER_LEFT, SQUARE_POLY], FRAME)
    assert backward == counts
