"""COCO RLE masks: our decoder against pycocotools' encoder (both count forms), masks traced
into polygons that rasterize back onto the mask, malformed masks refused with nothing
imported."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_util

from format_files import store_state, write_image
from src.data.formats import import_annotations
from src.data.formats.masks import decode_rle, mask_to_polygons
from src.db import annotations as annotations_repo
from src.errors import DatasetError

W, H = 64, 48


def _compressed(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _uncompressed(mask: np.ndarray) -> dict:
    """COCO's plain form: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.astype(np.uint8).flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": [mask.shape[0], mask.shape[1]], "counts": ([0] if flat[0] else []) + runs}


def _rasterize(polygons, h: int, w: int) -> np.ndarray:
    """The polygons filled by pycocotools (how COCO tools see them)."""
    flat = [[v for p in poly.points for v in p] for poly in polygons]
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(flat, h, w)))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_decoder_reads_what_pycocotools_writes(h, w, data):
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    mask = np.array(bits, dtype=np.uint8).reshape(h, w)
    for rle in (_compressed(mask), _uncompressed(mask)):
        assert np.array_equal(decode_rle(rle, Path("x.json"), "seg"), mask)


def test_decoder_on_a_large_mask_with_long_runs():
    mask = np.zeros((300, 400), np.uint8)
    cv2.ellipse(mask, (200, 150), (150, 100), 0, 0, 360, 1, -1)
    mask[:, 390:] = 1                              # runs past 2**10 use several groups
    assert np.array_equal(decode_rle(_compressed(mask), Path("x.json"), "seg"), mask)


def test_traced_polygons_cover_the_mask():
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (20, 20), (14, 10), 30, 0, 360, 1, -1)
    cv2.rectangle(mask, (40, 30), (58, 44), 1, -1)
    traced = mask_to_polygons(mask)
    assert len(traced.polygons) == 2 and traced.holes_filled == 0
    assert _iou(_rasterize(traced.polygons, H, W), mask) > 0.9
    assert sum(p.area for p in traced.polygons) == pytest.approx(mask.sum(), rel=0.1)
    assert all(len(p.points) < 40 for p in traced.polygons)      # simplified, not per pixel


def test_a_hole_is_filled_and_counted():
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (30, 24), 18, 1, -1)
    cv2.circle(mask, (30, 24), 6, 0, -1)
    traced = mask_to_polygons(mask)
    assert len(traced.polygons) == 1 and traced.holes_filled == 1
    filled = mask.copy()
    cv2.circle(filled, (30, 24), 6, 1, -1)
    assert _iou(_rasterize(traced.polygons, H, W), filled) > 0.9


def _coco_with_masks(root: Path, segmentations: list) -> Path:
    write_image(root / "images" / "a.png", W, H, 7)
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25,
             "iscrowd": crowd, "segmentation": seg}
            for i, (seg, crowd) in enumerate(segmentations)]
    path = root / "instances.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "rusty bolt"}], "annotations": anns}))
    return path


def test_rle_masks_import_as_polygons(project, tmp_path):
    blob = np.zeros((H, W), np.uint8)
    cv2.circle(blob, (20, 20), 12, 1, -1)
    crowd = np.zeros((H, W), np.uint8)
    crowd[30:40, 5:15] = 1
    crowd[30:44, 40:60] = 1
    path = _coco_with_masks(tmp_path / "c", [(_compressed(blob), 0),
                                             (_uncompressed(crowd), 1)])
    summary = import_annotations(project, path, "coco")
    assert summary["annotations"] == 3
    assert summary["skipped"] == {"RLE masks imported as polygons": 2,
                                  "multi-part objects imported as one polygon per part": 1}
    stored = annotations_repo.list_annotations(project.conn)
    assert [a.kind for a in stored] == ["polygon"] * 3
    from src.data.geometry import Polygon
    polygons = [Polygon.of(a.geometry) for a in stored]
    assert _iou(_rasterize(polygons[:1], H, W), blob) > 0.9
    assert _iou(_rasterize(polygons[1:], H, W), crowd) > 0.9


@pytest.mark.parametrize("seg, message", [
    ({"size": [H, W], "counts": "0 1"}, r"field 'annotations\[1\].segmentation.counts': "
                                        r"character 1 \(' '\)"),
    ({"size": [H, W], "counts": [5, 7]}, r"counts cover 12 pixels"),
    ({"size": [H, W], "counts": [-5, H * W + 5]}, r"negative runs"),
    ({"size": [10, 10], "counts": [100]}, r"the mask is 10x10 but its image is 64x48"),
    ({"size": [H], "counts": []}, r"needs size \[height, width\]"),
    ({"size": [H, W], "counts": 12}, r"must be a string or a list"),
])
def test_malformed_masks_name_file_and_field(project, tmp_path, seg, message):
    good = np.ones((H, W), np.uint8)
    path = _coco_with_masks(tmp_path / "c", [(_compressed(good), 0), (seg, 0)])
    with pytest.raises(DatasetError, match=message) as info:
        import_annotations(project, path, "coco")
    assert "instances.json" in str(info.value)
    assert store_state(project) == ([], [], [], [], [])


def test_an_empty_mask_is_counted_and_a_one_pixel_line_kept(project, tmp_path):
    line = np.zeros((H, W), np.uint8)
    line[10, 5:30] = 1
    path = _coco_with_masks(tmp_path / "c", [(_compressed(np.zeros((H, W), np.uint8)), 0),
                                             (_compressed(line), 0)])
    summary = import_annotations(project, path, "coco")
    assert summary["annotations"] == 1
    assert summary["skipped"]["empty RLE masks"] == 1
    assert summary["skipped"][
        "one-pixel-wide RLE mask regions imported as their bounding rectangle"] == 1
    [ann] = annotations_repo.list_annotations(project.conn)
    assert sorted(map(tuple, ann.geometry)) == [(5, 10), (5, 11), (30, 10), (30, 11)]
