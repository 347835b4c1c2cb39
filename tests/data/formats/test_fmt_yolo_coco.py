"""YOLO and COCO: round trips through the store (Hypothesis), malformed files refused with
nothing imported, exports checked by pycocotools."""
from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from format_files import digest, store_state, write_image
from src.data.formats import export_annotations, import_annotations
from src.data.geometry import Polygon
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db.project import Project
from src.errors import DatasetError

TOL = 1e-6
names = st.lists(st.text("abcdefghij", min_size=1, max_size=6), min_size=1, max_size=4,
                 unique_by=str.casefold)


@st.composite
def yolo_shape(draw, n_classes: int, boxes: bool):
    cls = draw(st.integers(0, n_classes - 1))
    if boxes:
        x1, x2 = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
        assume(x2 - x1 > 0.01 and y2 - y1 > 0.01)
        return [cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    points = draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=7))
    assume(Polygon(tuple(points)).area > 1e-3)
    return [cls] + [v for p in points for v in p]


@st.composite
def yolo_datasets(draw):
    """A detect (boxes only) or segment (polygons only) dataset, as ultralytics reads them."""
    classes = draw(names)
    boxes = draw(st.booleans())
    images = draw(st.lists(st.tuples(st.integers(16, 48), st.integers(16, 48),
                                     st.lists(yolo_shape(len(classes), boxes), max_size=5)),
                           min_size=1, max_size=3))
    return classes, images


@contextmanager
def _new_dir():
    """A scratch folder per Hypothesis example (tmp_path is one per test)."""
    root = Path(tempfile.mkdtemp(prefix="fmt-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write_yolo(root: Path, classes, images) -> dict[str, list]:
    """Write a YOLO dataset; image digest -> its label rows."""
    expected = {}
    for i, (w, h, rows) in enumerate(images):
        split = "train" if i % 2 == 0 else "val"
        image = root / "images" / split / f"img{i}.png"
        write_image(image, w, h, seed=hash((w, h, i, len(rows))) % 2**32)
        label = root / "labels" / split / f"img{i}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{r[0]} " + " ".join(repr(v) for v in r[1:]) + "\n"
                                 for r in rows))
        expected[digest(image)] = rows
    (root / "images" / "val").mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": str(root), "train": "images/train", "val": "images/val",
         "names": dict(enumerate(classes))}))
    return expected


def _read_yolo_export(out: Path) -> tuple[list[str], dict[str, list]]:
    data = yaml.safe_load((out / "data.yaml").read_text())
    found = {}
    for image in (out / "images").rglob("*.png"):
        label = out / "labels" / image.parent.name / (image.stem + ".txt")
        found[digest(image)] = [[int(p[0])] + [float(v) for v in p[1:]]
                                for p in (line.split() for line in label.read_text().splitlines())]
    return [data["names"][i] for i in range(len(data["names"]))], found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yolo_datasets())
def test_yolo_round_trip_preserves_every_shape_and_class(dataset):
    with _new_dir() as root:
        _yolo_round_trip(root, *dataset)


def _yolo_round_trip(root: Path, classes, images) -> None:
    expected = _write_yolo(root / "in", classes, images)
    with Project.open(root / "project") as project:
        summary = import_annotations(project, root / "in", "yolo")
        assert summary["annotations"] == sum(len(rows) for _, _, rows in images)
        assert {a.source for a in annotations_repo.list_annotations(project.conn)} <= {"imported"}
        export_annotations(project, root / "out", "yolo")
    exported_classes, found = _read_yolo_export(root / "out")
    assert exported_classes == classes
    assert set(found) == set(expected)
    for key, rows in expected.items():
        got = found[key]
        assert [r[0] for r in got] == [r[0] for r in rows]
        for a, b in zip(got, rows):
            assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a[1:], b[1:])) <= TOL


@st.composite
def coco_datasets(draw):
    cat_names = draw(names)
    cat_ids = draw(st.lists(st.integers(1, 90), min_size=len(cat_names),
                            max_size=len(cat_names), unique=True))
    images, anns = [], []
    for i in range(draw(st.integers(1, 3))):
        w, h = draw(st.integers(16, 48)), draw(st.integers(16, 48))
        images.append({"id": 100 + i, "file_name": f"im{i}.png", "width": w, "height": h})
        for _ in range(draw(st.integers(0, 4))):
            cat = draw(st.sampled_from(cat_ids))
            if draw(st.booleans()):
                x, y = draw(st.floats(0, w - 2)), draw(st.floats(0, h - 2))
                bw, bh = draw(st.floats(1, w - x)), draw(st.floats(1, h - y))
                anns.append({"image_id": 100 + i, "category_id": cat, "bbox": [x, y, bw, bh],
                             "iscrowd": 0})
            else:
                pts = draw(st.lists(st.tuples(st.floats(0, w), st.floats(0, h)), min_size=3,
                                    max_size=6))
                assume(Polygon(tuple(pts)).area > 1)
                poly = Polygon(tuple(pts))
                b = poly.bbox()
                anns.append({"image_id": 100 + i, "category_id": cat,
                             "segmentation": [[v for p in pts for v in p]],
                             "bbox": [b.x1, b.y1, b.width, b.height], "iscrowd": 0})
    for n, ann in enumerate(anns):
        ann["id"] = n + 1
    categories = [{"id": c, "name": n} for c, n in zip(cat_ids, cat_names)]
    return {"images": images, "annotations": anns, "categories": categories}


def _coco_shapes(doc: dict, by_image: dict[int, str]) -> dict[str, list]:
    """image digest -> [(category name, normalized bbox, normalized polygon)] in order."""
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    sizes = {i["id"]: (i["width"], i["height"]) for i in doc["images"]}
    out = {by_image[i["id"]]: [] for i in doc["images"]}
    for ann in doc["annotations"]:
        w, h = sizes[ann["image_id"]]
        box = [ann["bbox"][0] / w, ann["bbox"][1] / h, ann["bbox"][2] / w, ann["bbox"][3] / h]
        seg = [v / (w if k % 2 == 0 else h)
               for k, v in enumerate(ann["segmentation"][0])] if ann.get("segmentation") else []
        out[by_image[ann["image_id"]]].append((cats[ann["category_id"]], box, seg))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coco_datasets())
def test_coco_round_trip_preserves_every_shape_and_class(doc):
    with _new_dir() as root:
        _coco_round_trip(root, doc)


def _coco_round_trip(root: Path, doc: dict) -> None:
    by_image = {}
    for n, image in enumerate(doc["images"]):
        write_image(root / "in" / "images" / image["file_name"], image["width"],
                    image["height"], seed=n * 7919 + image["width"])
        by_image[image["id"]] = digest(root / "in" / "images" / image["file_name"])
    (root / "in" / "instances.json").write_text(json.dumps(doc))
    with Project.open(root / "project") as project:
        import_annotations(project, root / "in" / "instances.json", "coco")
        export_annotations(project, root / "out", "coco")
    exported = json.loads((root / "out" / "annotations" / "instances_train.json").read_text())
    assert [c["name"] for c in exported["categories"]] == \
        [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])]
    out_by_image = {i["id"]: digest(root / "out" / "images" / "train" / i["file_name"])
                    for i in exported["images"]}
    want, got = _coco_shapes(doc, by_image), _coco_shapes(exported, out_by_image)
    assert set(want) == set(got)
    for key in want:
        assert len(want[key]) == len(got[key])
        for (c1, b1, s1), (c2, b2, s2) in zip(want[key], got[key]):
            assert c1 == c2 and len(s1) == len(s2)
            assert max(abs(x - y) for x, y in zip(b1 + s1, b2 + s2)) <= TOL


def _small_coco(root: Path) -> Path:
    write_image(root / "images" / "a.png", 40, 30, 1)
    write_image(root / "images" / "b.png", 40, 30, 2)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
                      {"id": 2, "file_name": "b.png", "width": 40, "height": 30}],
           "categories": [{"id": 1, "name": "car"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8]},
                           {"id": 2, "image_id": 2, "category_id": 1, "bbox": [3, 3, 5, 5]}]}
    path = root / "instances.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


@pytest.mark.parametrize("break_it, message", [
    (lambda d: d["annotations"][1].update(bbox=[1, 2, "wide", 4]),
     "field 'annotations\\[1\\].bbox': expected a number"),
    (lambda d: d["annotations"][1].update(category_id=9),
     "field 'annotations\\[1\\].category_id': category_id 9 is not in 'categories'"),
    (lambda d: d["images"][1].update(file_name="gone.png"),
     "field 'images\\[1\\].file_name': image 'gone.png' not found"),
    (lambda d: d["images"][1].update(width=41),   # caught only after the images are copied
     "annotations are for a 41x30 image but the file is 40x30"),
])
def test_malformed_coco_is_refused_and_the_project_is_unchanged(project, tmp_path, break_it,
                                                                message):
    path = _small_coco(tmp_path / "coco")
    import_annotations(project, path, "coco")           # a first, good import
    before = store_state(project)
    doc = json.loads(path.read_text())
    break_it(doc)
    write_image(tmp_path / "coco2" / "images" / "a.png", 40, 30, 3)
    write_image(tmp_path / "coco2" / "images" / "b.png", 40, 30, 4)
    (tmp_path / "coco2" / "instances.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=message) as info:
        import_annotations(project, tmp_path / "coco2" / "instances.json", "coco")
    assert str(tmp_path / "coco2") in str(info.value)
    assert store_state(project) == before


def test_invalid_json_names_the_line(project, tmp_path):
    path = _small_coco(tmp_path)
    text = path.read_text().splitlines()
    text[3] = text[3] + ","                            # a stray comma on line 4
    path.write_text("\n".join(text))
    with pytest.raises(DatasetError, match=r"instances.json: line \d+ column \d+: invalid JSON"):
        import_annotations(project, path, "coco")
    assert store_state(project) == ([], [], [], [], [])


def test_malformed_yolo_label_names_file_and_line(project, tmp_path):
    _write_yolo(tmp_path / "y", ["car", "bike"], [(32, 32, [[0, 0.5, 0.5, 0.2, 0.2]]),
                                                  (32, 32, [[1, 0.5, 0.5, 0.2, 0.2]])])
    label = tmp_path / "y" / "labels" / "val" / "img1.txt"
    label.write_text("1 0.5 0.5 0.2 0.2\n5 0.1 0.1 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"img1.txt: line 2: class '5' is not an index 0..1"):
        import_annotations(project, tmp_path / "y", "yolo")
    label.write_text("1 0.5 0.5 0.2\n")
    with pytest.raises(DatasetError, match=r"img1.txt: line 1: expected 'class cx cy w h'"):
        import_annotations(project, tmp_path / "y", "yolo")
    label.write_text("1 50 50 20 20\n")
    with pytest.raises(DatasetError, match=r"line 1: coordinates must be normalized"):
        import_annotations(project, tmp_path / "y" / "data.yaml", "yolo")
    assert store_state(project) == ([], [], [], [], [])


def test_pycocotools_loads_the_export_and_matches_the_store(project, tmp_path):
    from pycocotools.coco import COCO
    _write_yolo(tmp_path / "y", ["car", "person"], [
        (40, 30, [[0, 0.5, 0.5, 0.2, 0.4], [1, 0.1, 0.1, 0.5, 0.1, 0.3, 0.6]]),
        (40, 30, [[1, 0.2, 0.2, 0.2, 0.2]]), (40, 30, [])])
    import_annotations(project, tmp_path / "y", "yolo")
    export_annotations(project, tmp_path / "out", "coco")
    coco = COCO(str(tmp_path / "out" / "annotations" / "instances_train.json"))
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    for frame in frames_repo.list_frames(project.conn):
        stored = annotations_repo.list_annotations(project.conn, frame.id)
        ids = coco.getAnnIds(imgIds=[frame.id])
        assert sorted(ids) == sorted(a.id for a in stored)
        for ann in coco.loadAnns(ids):
            record = next(a for a in stored if a.id == ann["id"])
            assert coco.loadCats(ann["category_id"])[0]["name"] == names[record.class_id]
            shape = Polygon.of(record.geometry).bbox() if record.kind == "polygon" else None
            x1, y1, x2, y2 = shape.to_list() if shape else record.geometry
            assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-9)
            if record.kind == "polygon":
                assert coco.annToMask(ann).sum() > 0


def test_coco_multi_part_objects_and_rle_masks(project, tmp_path):
    path = _small_coco(tmp_path)
    doc = json.loads(path.read_text())
    doc["annotations"][0]["segmentation"] = [[1, 1, 9, 1, 5, 8], [20, 20, 30, 20, 25, 28]]
    # pixels x 3..7, y 3..7 of the 40x30 image, as column-major runs (COCO's plain RLE)
    counts = [3 * 30 + 3] + [5, 25] * 4 + [5, 30 * 40 - (3 * 30 + 3) - 5 * 5 - 25 * 4]
    doc["annotations"][1]["segmentation"] = {"counts": counts, "size": [30, 40]}
    path.write_text(json.dumps(doc))
    summary = import_annotations(project, path, "coco")
    assert summary["skipped"] == {"multi-part objects imported as one polygon per part": 1,
                                  "RLE masks imported as polygons": 1}
    kinds = [(a.kind, a.geometry) for a in annotations_repo.list_annotations(project.conn)]
    assert kinds[:2] == [("polygon", [[1.0, 1.0], [9.0, 1.0], [5.0, 8.0]]),
                         ("polygon", [[20.0, 20.0], [30.0, 20.0], [25.0, 28.0]])]
    assert kinds[2][0] == "polygon"         # the mask's outline: its pixels' outer edges
    assert sorted(map(tuple, kinds[2][1])) == [(3, 3), (3, 8), (8, 3), (8, 8)]


def test_yolo_export_of_mixed_shapes_writes_boxes_ultralytics_can_read(project, tmp_path):
    _write_yolo(tmp_path / "seg", ["person"], [(40, 30, [[0, 0.1, 0.1, 0.5, 0.1, 0.3, 0.6]])])
    _write_yolo(tmp_path / "det", ["car"], [(40, 30, [[0, 0.5, 0.5, 0.2, 0.4]])])
    import_annotations(project, tmp_path / "seg", "yolo")
    import_annotations(project, tmp_path / "det", "yolo")
    summary = export_annotations(project, tmp_path / "out", "yolo")
    assert summary["task"] == "detect" and summary["polygons written as boxes"] == 1
    lines = [line.split() for f in (tmp_path / "out" / "labels").rglob("*.txt")
             for line in f.read_text().splitlines()]
    assert sorted(len(line) for line in lines) == [5, 5]
    person = next(line for line in lines if line[0] == "0")
    assert [float(v) for v in person[1:]] == pytest.approx([0.3, 0.35, 0.4, 0.5], abs=1e-6)
