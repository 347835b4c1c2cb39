"""Augmentation pipelines keep boxes and polygons on their objects, inside the image."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cv2

from src.data import augment
from src.data.augment import LabelledShape
from src.data.geometry import Box, Polygon
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.records import Annotation, Frame, MediaSource
from src.errors import ConfigError

W, H = 120, 96
# Distinct, saturated BGR colours; background black.
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0)]


@st.composite
def scenes(draw):
    """Up to 6 solid rectangles, one per cell of a 3x2 grid (gaps keep them apart)."""
    cells = draw(st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True))
    image = np.zeros((H, W, 3), np.uint8)
    mask = np.zeros((H, W), np.uint8)
    shapes = []
    for i in cells:
        cx, cy = (i % 3) * 40, (i // 3) * 48
        x1 = cx + draw(st.integers(4, 12))
        y1 = cy + draw(st.integers(4, 14))
        x2 = x1 + draw(st.integers(8, 36 - (x1 - cx)))
        y2 = y1 + draw(st.integers(8, 44 - (y1 - cy)))
        image[y1:y2, x1:x2] = COLOURS[i]
        mask[y1:y2, x1:x2] = i + 1
        shapes.append(LabelledShape(f"obj{i}", Box(x1, y1, x2, y2)))
    return image, mask, shapes


def _spatial_only(pipeline: A.Compose, seed: int) -> A.Compose:
    spatial = [t for t in pipeline.transforms if isinstance(t, A.DualTransform)]
    return A.Compose(spatial, seed=seed, bbox_params=pipeline.processors["bboxes"].params,
                     keypoint_params=pipeline.processors["keypoints"].params)


def _majority(values: np.ndarray) -> tuple[int, int]:
    """(most common non-zero value, its count) in an array of object ids or colour ids."""
    values = values[values > 0]
    if values.size == 0:
        return 0, 0
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[counts.argmax()]), int(counts.max())


def _region(array: np.ndarray, b: Box) -> np.ndarray:
    return array[int(np.floor(b.y1)):int(np.ceil(b.y2)), int(np.floor(b.x1)):int(np.ceil(b.x2))]


def _check_boxes(shapes, moved, w, h, object_ids) -> None:
    names = {s.label for s in shapes}
    for item in moved:
        b = item.shape
        assert item.label in names                                   # class kept
        assert 0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h      # inside the image
        owner, count = _majority(_region(object_ids, b))
        assert owner == int(item.label[3:]) + 1 and count > 0        # still on its object


@settings(max_examples=40, deadline=None)
@given(scenes(), st.sampled_from(["standard", "heavy"]), st.integers(0, 2**16))
def test_boxes_stay_inside_keep_their_class_and_cover_their_object(scene, name, seed):
    image, mask, shapes = scene
    pipeline = augment.build_pipeline(name, seed=seed)
    out, moved, out_mask = augment.augment(pipeline, image, shapes, mask=mask)
    _check_boxes(shapes, moved, out.shape[1], out.shape[0], out_mask)
    # The same geometry on the colour image itself: the majority colour under each box is
    # its object's colour (photometric steps left out, they change colours on purpose).
    out, moved = augment.augment(_spatial_only(pipeline, seed), image, shapes)
    colour_ids = np.zeros(out.shape[:2], np.uint8)
    for i, colour in enumerate(COLOURS):
        colour_ids[np.abs(out.astype(int) - colour).sum(axis=2) < 60] = i + 1
    _check_boxes(shapes, moved, out.shape[1], out.shape[0], colour_ids)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16))
def test_polygons_follow_the_image_and_stay_inside(seed):
    image = np.zeros((H, W, 3), np.uint8)
    triangle = Polygon(((20.0, 20.0), (60.0, 24.0), (30.0, 70.0)))
    out, moved = augment.augment(augment.build_pipeline("heavy", seed=seed), image,
                                 [LabelledShape("tri", triangle)])
    for item in moved:
        assert item.label == "tri" and isinstance(item.shape, Polygon)
        assert all(0 <= x <= W and 0 <= y <= H for x, y in item.shape.points)


def test_unknown_pipelines_and_transforms_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no augmentation pipeline 'wild'.*standard, heavy"):
        augment.build_pipeline("wild")
    bad = tmp_path / "augment.yaml"
    bad.write_text("mine:\n  - NotATransform: {p: 1}\n")
    with pytest.raises(ConfigError, match="unknown transform 'NotATransform'") as info:
        augment.build_pipeline("mine", path=bad)
    assert str(bad) in str(info.value)
    bad.write_text("mine:\n  - HorizontalFlip: {probability: 1}\n")
    with pytest.raises(ConfigError, match="bad arguments for HorizontalFlip"):
        augment.build_pipeline("mine", path=bad)


def _annotated_project(project, frames: int) -> None:
    """`frames` grey 96x64 frames with a car box and a person polygon, plus one empty."""
    source = sources_repo.add_source(project.conn, MediaSource(
        kind="video", path=str(project.root / "v.mp4"), name="v.mp4", frame_count=frames + 1))
    car = classes_repo.add_class(project.conn, "car")
    person = classes_repo.add_class(project.conn, "person")
    (project.frames_dir / "1").mkdir(parents=True)
    for i in range(frames + 1):
        path = project.frames_dir / "1" / f"{i:06d}.png"
        cv2.imwrite(str(path), np.full((64, 96, 3), 90, np.uint8))
        frame = frames_repo.add_frame(project.conn, Frame(source.id, i, project.relpath(path),
                                                          96, 64))
        if i < frames:
            annotations_repo.add_annotations(project.conn, [
                Annotation(frame.id, car.id, "box", [10, 10, 40, 30]),
                Annotation(frame.id, person.id, "polygon", [[50, 20], [70, 20], [60, 40]])])


def test_preview_returns_augmented_frames_with_shapes_drawn(project):
    _annotated_project(project, 5)
    images = augment.preview(project, 3, pipeline="standard", seed=1)
    assert len(images) == 3
    car = tuple(int("e6194b"[i:i + 2], 16) for i in (4, 2, 0))   # the first palette colour
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (64, 96, 3)
        assert (np.abs(image.astype(int) - car).sum(axis=2) == 0).any()
    assert len(augment.preview(project, 50)) == 5     # only frames with shapes
