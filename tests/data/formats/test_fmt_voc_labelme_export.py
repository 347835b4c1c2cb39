"""VOC and labelme round trips, exports of dataset versions, export refusals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from format_files import digest, store_state, write_image
from src.data.datasets import DatasetSpec, build_dataset
from src.data.formats import export_annotations, import_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.errors import DatasetError


def _labelme_folder(root: Path) -> None:
    write_image(root / "a.png", 48, 32, 1)
    write_image(root / "b.png", 48, 32, 2)
    shapes_a = [{"label": "car", "points": [[30.5, 20], [4, 2.25]], "shape_type": "rectangle"},
                {"label": "person", "points": [[1, 1], [20, 3], [10, 30]],
                 "shape_type": "polygon"},
                {"label": "dot", "points": [[5, 5]], "shape_type": "point"}]
    for name, shapes, flags in (("a", shapes_a, {"day": True, "night": False}),
                                ("b", [], {"night": True})):
        (root / f"{name}.json").write_text(json.dumps({
            "version": "5.5.0", "flags": flags, "shapes": shapes, "imagePath": f"{name}.png",
            "imageData": None, "imageHeight": 32, "imageWidth": 48}))


def _populate(project, root: Path, n: int = 20) -> None:
    """Import n 48x32 images, each with a 'car' box and a 'person' polygon."""
    for i in range(n):
        write_image(root / "images" / "train" / f"{i:03d}.png", 48, 32, 100 + i)
        label = root / "labels" / "train" / f"{i:03d}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"0 0.{2 + i % 5} 0.5 0.2 0.3\n1 0.6 0.1 0.9 0.2 0.7 0.8\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train",
                                                    "val": "images/train",
                                                    "names": ["car", "person"]}))
    import_annotations(project, root, "yolo")


def _kinds(project) -> list[tuple]:
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    return sorted((names[a.class_id], a.kind, json.dumps(a.geometry))
                  for a in annotations_repo.list_annotations(project.conn))


def test_labelme_round_trip_keeps_boxes_polygons_and_tags(project, tmp_path):
    _labelme_folder(tmp_path / "lm")
    summary = import_annotations(project, tmp_path / "lm", "labelme")
    assert summary["skipped"] == {"labelme 'point' shapes": 1}
    first = _kinds(project)
    assert first == sorted([("car", "box", json.dumps([4.0, 2.25, 30.5, 20.0])),
                            ("person", "polygon", json.dumps([[1.0, 1.0], [20.0, 3.0],
                                                              [10.0, 30.0]])),
                            ("day", "tag", "null"), ("night", "tag", "null")])
    export_annotations(project, tmp_path / "out", "labelme")
    from src.db.project import Project
    with Project.open(tmp_path / "again") as again:
        import_annotations(again, tmp_path / "out", "labelme")
        assert _kinds(again) == first


def test_voc_round_trip_keeps_boxes_and_writes_polygons_as_boxes(project, tmp_path):
    _labelme_folder(tmp_path / "lm")
    import_annotations(project, tmp_path / "lm", "labelme")
    summary = export_annotations(project, tmp_path / "voc", "voc")
    assert summary["polygons written as boxes"] == 1
    xml = "".join(f.read_text() for f in (tmp_path / "voc" / "Annotations").glob("*.xml"))
    assert "<xmin>5</xmin>" in xml and "<xmax>30.5</xmax>" in xml   # 1-based VOC pixels
    assert (tmp_path / "voc" / "ImageSets" / "Main" / "train.txt").is_file()
    from src.db.project import Project
    with Project.open(tmp_path / "again") as again:
        import_annotations(again, tmp_path / "voc", "voc")
        assert _kinds(again) == sorted([("car", "box", json.dumps([4.0, 2.25, 30.5, 20.0])),
                                        ("person", "box", json.dumps([1.0, 1.0, 20.0, 30.0]))])


def test_malformed_voc_and_labelme_name_file_and_place(project, tmp_path):
    ann = tmp_path / "voc" / "Annotations"
    ann.mkdir(parents=True)
    write_image(tmp_path / "voc" / "JPEGImages" / "a.png", 20, 20, 1)
    (ann / "a.xml").write_text("<annotation>\n<filename>a.png</filename>\n<size>\n</annotation>")
    with pytest.raises(DatasetError, match=r"a.xml: line 4 column \d+: invalid XML"):
        import_annotations(project, tmp_path / "voc", "voc")
    (ann / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>20</width><height>20</height>"
        "</size><object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
        "</bndbox></object></annotation>")
    with pytest.raises(DatasetError, match=r"a.xml: field 'object\[0\]/bndbox/ymax'"):
        import_annotations(project, tmp_path / "voc", "voc")
    _labelme_folder(tmp_path / "lm")
    doc = json.loads((tmp_path / "lm" / "b.json").read_text())
    doc["shapes"] = [{"label": "car", "points": [[1, 1]], "shape_type": "rectangle"}]
    (tmp_path / "lm" / "b.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"b.json: field 'shapes\[0\].points': a rectangle"):
        import_annotations(project, tmp_path / "lm", "labelme")
    assert store_state(project) == ([], [], [], [], [])


def test_export_a_dataset_version_keeps_its_splits(project, tmp_path):
    from pycocotools.coco import COCO
    _populate(project, tmp_path / "src")
    _, path = build_dataset(project, DatasetSpec(name="d", task="detect", group_by="none"))
    summary = export_annotations(project, tmp_path / "coco", "coco", dataset="d:v1")
    lines = sum(len(f.read_text().splitlines()) for f in (path / "labels").rglob("*.txt"))
    assert summary["annotations"] == lines
    for split in ("train", "val", "test"):
        coco = COCO(str(tmp_path / "coco" / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == len(list((path / "images" / split).iterdir()))
    export_annotations(project, tmp_path / "yolo", "yolo", dataset="d")
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert "path" not in data and data["test"] == "images/test"
    assert {digest(p) for p in (tmp_path / "yolo" / "images" / "val").iterdir()} == \
        {digest(p) for p in (path / "images" / "val").iterdir()}


def test_export_refuses_non_empty_folders_and_image_folder_datasets(project, tmp_path):
    _populate(project, tmp_path / "src")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(DatasetError, match="exists and is not empty"):
        export_annotations(project, tmp_path / "full", "coco")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    build_dataset(project, DatasetSpec(name="c", task="crops", group_by="none"))
    with pytest.raises(DatasetError, match="is a crops dataset"):
        export_annotations(project, tmp_path / "c", "yolo", dataset="c")
    with pytest.raises(DatasetError, match="unknown annotation format 'csv'"):
        export_annotations(project, tmp_path / "c", "csv")
    assert not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
