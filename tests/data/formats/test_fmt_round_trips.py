"""Round trips through every format with class names holding spaces, non-ASCII letters and
digits: the project exported and imported into a new one, and dataset versions exported
with their splits (detect and segment where the format has polygons), read back."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
from dataset_synth import add_source, box, poly  # noqa: E402

from format_files import digest  # noqa: E402
from src.data.datasets import DatasetSpec, build_dataset  # noqa: E402
from src.data.formats import export_annotations, import_annotations, read_annotations  # noqa: E402,E501
from src.data.geometry import Polygon  # noqa: E402
from src.db import annotations as annotations_repo  # noqa: E402
from src.db import classes as classes_repo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.project import Project  # noqa: E402

NAMES = ["rusty bolt", "Käfer", "type 2"]
POLYGON_FORMATS = ("yolo", "coco", "labelme")       # VOC has boxes only


def odd_frames(n: int, kind: str) -> list[list[tuple]]:
    """n frames, each with one shape of every class in NAMES (boxes or polygons)."""
    make = box if kind == "box" else poly
    return [[make(name, 4 + (i * 3 + 20 * k) % 70, 4 + 18 * k) for k, name in enumerate(NAMES)]
            for i in range(n)]


def store(project) -> list[tuple]:
    """(image digest, class, kind, geometry rounded) of every annotation of the project."""
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    images = {f.id: digest(project.abspath(f.image_path))
              for f in frames_repo.list_frames(project.conn)}
    out = []
    for a in annotations_repo.list_annotations(project.conn):
        flat = [a.geometry] if a.kind == "box" else a.geometry
        points = tuple(tuple(round(v, 3) for v in p) for p in flat)
        out.append((images[a.frame_id], names[a.class_id], a.kind, points))
    return sorted(out)


@pytest.mark.parametrize("fmt, kind", [(f, "box") for f in ("yolo", "coco", "voc", "labelme")]
                         + [(f, "polygon") for f in POLYGON_FORMATS])
def test_project_round_trip_keeps_names_and_shapes(project, tmp_path, fmt, kind):
    add_source(project, "cam", odd_frames(4, kind))
    export_annotations(project, tmp_path / "out", fmt)
    with Project.open(tmp_path / "again") as again:
        summary = import_annotations(again, tmp_path / "out", fmt)
        assert sorted(summary["new_classes"]) == sorted(NAMES)
        assert [c.name for c in classes_repo.list_classes(again.conn)] == NAMES
        assert store(again) == store(project)


def _snapshot_shapes(path: Path, classes: list[str]) -> dict[str, list[tuple]]:
    """split -> sorted (image digest, class, shape) as the snapshot's YOLO labels hold them."""
    labeled = read_annotations(path / "data.yaml", "yolo")
    return _by_split(labeled)


def _by_split(labeled) -> dict[str, list[tuple]]:
    from PIL import Image
    out: dict[str, list[tuple]] = {}
    for image in labeled.images:
        with Image.open(image.path) as im:
            w, h = im.size
        for item in image.shapes:
            shape = item.to_pixels(w, h).shape
            flat = shape.to_list() if isinstance(shape, Polygon) else [shape.to_list()]
            out.setdefault(image.split, []).append(
                (digest(image.path), item.label,
                 tuple(tuple(round(v, 2) for v in p) for p in flat)))
    return {split: sorted(rows) for split, rows in out.items()}


@pytest.fixture
def versions(project):
    """A detect and a segment version (train/val/test) of a project with odd class names."""
    add_source(project, "boxes", odd_frames(12, "box"))
    add_source(project, "polys", odd_frames(12, "polygon"))
    paths = {}
    for task in ("detect", "segment"):
        _, paths[task] = build_dataset(project, DatasetSpec(name=task, task=task,
                                                            group_by="none"))
    return paths


@pytest.mark.parametrize("fmt, task", [(f, "detect") for f in ("yolo", "coco", "voc", "labelme")]
                         + [(f, "segment") for f in POLYGON_FORMATS])
def test_dataset_version_exports_read_back_split_by_split(project, versions, tmp_path, fmt,
                                                           task):
    expected = _snapshot_shapes(versions[task], NAMES)
    assert set(expected) == {"train", "val", "test"}
    export_annotations(project, tmp_path / "out", fmt, dataset=task)
    labeled = read_annotations(tmp_path / "out", fmt)
    assert _by_split(labeled) == expected
    assert sorted(labeled.classes) == sorted(NAMES)


def test_segment_version_exports_coco_polygons(project, versions, tmp_path):
    from pycocotools.coco import COCO
    export_annotations(project, tmp_path / "out", "coco", dataset="segment")
    checked = 0
    for split in ("train", "val", "test"):
        coco = COCO(str(tmp_path / "out" / "annotations" / f"instances_{split}.json"))
        assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(NAMES)
        for ann in coco.loadAnns(coco.getAnnIds()):
            [flat] = ann["segmentation"]
            polygon = Polygon(tuple(zip(flat[::2], flat[1::2])))
            assert ann["area"] == pytest.approx(polygon.area)
            b = polygon.bbox()
            assert ann["bbox"] == pytest.approx([b.x1, b.y1, b.width, b.height])
            assert abs(int(coco.annToMask(ann).sum()) - polygon.area) < 0.5 * (b.width + b.height) * 2
            checked += 1
    assert checked == 12 * len(NAMES)


def test_coco_export_of_a_version_imports_back_with_its_subsets(project, versions, tmp_path):
    export_annotations(project, tmp_path / "out", "coco", dataset="segment")
    with Project.open(tmp_path / "again") as again:
        summary = import_annotations(again, tmp_path / "out", "coco")
        splits = {s: len(list((versions["segment"] / "images" / s).iterdir()))
                  for s in ("train", "val", "test")}
        assert summary["subsets"] == splits
        assert {s.name: s.frame_count for s in sources_repo.list_sources(again.conn)} == splits
        assert {k for _, _, k, _ in store(again)} == {"polygon"}


def test_labelme_export_of_a_version_keeps_one_folder_per_split(project, versions, tmp_path):
    export_annotations(project, tmp_path / "out", "labelme", dataset="detect")
    for split in ("train", "val", "test"):
        images = {p.name for p in (versions["detect"] / "images" / split).iterdir()}
        docs = list((tmp_path / "out" / split).glob("*.json"))
        assert {json.loads(d.read_text(encoding="utf-8"))["imagePath"] for d in docs} == images
    with Project.open(tmp_path / "again") as again:
        import_annotations(again, tmp_path / "out", "labelme")
        assert {s.name for s in sources_repo.list_sources(again.conn)} == \
            {"train", "val", "test"}
