"""Corrected frames as detector batches: letterbox geometry, augmentation keeps boxes on
their objects, the loss's batch layout."""
from __future__ import annotations

import numpy as np

from src.training.learning.detector_data import (DetectorSample, canvas_shape, letterbox,
                                                 to_batch, unletterbox)


def sample() -> DetectorSample:
    image = np.full((240, 320, 3), 30, np.uint8)
    image[20:220, 10:110] = (0, 0, 255)                 # a red object where its box says
    return DetectorSample("s", image, np.array([[10, 20, 110, 220]], np.float32),
                          np.array([1]))


def test_letterbox_round_trip_and_canvas():
    assert canvas_shape((240, 320), 320) == (256, 320)
    assert canvas_shape((100, 50), 64) == (64, 32)
    item = letterbox(sample(), 320)
    assert item.image.shape == (256, 320, 3)
    assert np.allclose(item.boxes, [[10, 28, 110, 228]])
    assert np.allclose(unletterbox(item.boxes, item), sample().boxes)


def test_augmented_boxes_still_cover_their_object():
    rng = np.random.default_rng(3)
    for _ in range(20):
        item = letterbox(sample(), 320, rng)
        assert item.image.shape == (256, 320, 3) and len(item.boxes) == len(item.classes)
        for x1, y1, x2, y2 in item.boxes.astype(int):
            inside = item.image[y1 + 3:y2 - 3, x1 + 3:x2 - 3].astype(int)
            # red dominates inside the box whatever the flip, scale, shift and brightness
            assert (inside[..., 2] - inside[..., 0]).mean() > 100


def test_batch_layout():
    items = [letterbox(sample(), 320), letterbox(sample(), 320, np.random.default_rng(0))]
    batch = to_batch(items)
    assert tuple(batch["img"].shape) == (2, 3, 256, 320)
    assert 0.0 <= float(batch["img"].min()) and float(batch["img"].max()) <= 1.0
    assert batch["batch_idx"].tolist() == [0.0, 1.0] and batch["cls"].ravel().tolist() == [1, 1]
    x, y, w, h = batch["bboxes"][0].tolist()
    assert np.allclose([x, y, w, h], [60 / 320, 128 / 256, 100 / 320, 200 / 256])
    assert float(batch["img"][0, 0, 128, 60]) > 0.9            # RGB: channel 0 is red


def triangle_sample() -> DetectorSample:
    """A red triangle (its polygon) and a blue box-only object on a 320x240 frame."""
    import cv2

    image = np.full((240, 320, 3), 30, np.uint8)
    points = np.array([[20, 200], [100, 40], [180, 200]], np.float32)
    cv2.fillPoly(image, [points.astype(np.int32)], (0, 0, 255))
    image[60:120, 220:300] = (255, 0, 0)
    rect = np.array([[220, 60], [300, 60], [300, 120], [220, 120]], np.float32)
    return DetectorSample("t", image, np.array([[20, 40, 180, 200], [220, 60, 300, 120]],
                                               np.float32), np.array([0, 1]), [points, rect])


def test_augmented_polygons_stay_on_their_objects_and_become_instance_masks():
    from src.training.learning.segment_update import SEGMENT, instance_masks

    rng = np.random.default_rng(5)
    for _ in range(10):
        item = letterbox(triangle_sample(), 320, rng)
        assert len(item.polygons) == len(item.boxes) == 2
        for polygon, box in zip(item.polygons, item.boxes):    # flips move both alike
            assert np.allclose(polygon.min(0), box[:2], atol=0.5)
            assert np.allclose(polygon.max(0), box[2:], atol=0.5)
        masks = instance_masks([item], 4)
        assert tuple(masks.shape) == (2, 64, 80)
        small = item.image[::4, ::4].astype(int)
        red = small[..., 2] - small[..., 0]
        # the triangle's mask lies on red pixels, and covers about half its box
        assert red[masks[0].numpy() > 0].mean() > 100
        x1, y1, x2, y2 = item.boxes[0] / 4
        assert 0.35 < float(masks[0].sum()) / ((x2 - x1) * (y2 - y1)) < 0.65
        assert red[masks[1].numpy() > 0].mean() < -100               # the blue rectangle
    batch = SEGMENT.batch([letterbox(triangle_sample(), 320)])
    assert tuple(batch["masks"].shape) == (2, 64, 80) and batch["batch_idx"].tolist() == [0, 0]
