"""Subsets kept on import: a COCO dataset folder with one annotation file per subset (CVAT,
Datumaro, Roboflow layouts) imports in one transaction, and each subset (COCO file, YOLO
split list) becomes a source of its own."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from format_files import store_state, write_image
from src.data.formats import import_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.errors import DatasetError

# Each subset numbers its categories its own way: the import matches them by name.
CATEGORIES = {"train": [{"id": 1, "name": "rusty bolt"}, {"id": 2, "name": "Käfer"}],
              "val": [{"id": 7, "name": "Käfer"}, {"id": 3, "name": "type 2"}]}


def _subset_doc(subset: str, n: int, seed: int, image_dir: Path, prefix: str = "") -> dict:
    images, anns = [], []
    for i in range(n):
        name = f"{prefix}{subset}_{i}.png"
        write_image(image_dir / name, 48, 32, seed + i)
        images.append({"id": i + 1, "file_name": name, "width": 48, "height": 32})
        for k, cat in enumerate(CATEGORIES[subset]):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat["id"],
                         "bbox": [2 + k * 10, 3, 8, 6], "area": 48, "iscrowd": 0,
                         "segmentation": []})
    return {"images": images, "annotations": anns, "categories": CATEGORIES[subset]}


def _cvat_layout(root: Path, common: bool = False) -> None:
    """annotations/instances_<subset>.json; images/<subset>/ (or one images/ folder)."""
    for seed, (subset, n) in enumerate((("train", 3), ("val", 2))):
        image_dir = root / "images" / ("" if common else subset)
        doc = _subset_doc(subset, n, 10 * seed, image_dir)
        path = root / "annotations" / f"instances_{subset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc), encoding="utf-8")


def _state(project) -> list[tuple]:
    """(source name, class, box) of every annotation."""
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    source_of = {f.id: f.source_id for f in frames_repo.list_frames(project.conn)}
    sources = {s.id: s.name for s in sources_repo.list_sources(project.conn)}
    return sorted((sources[source_of[a.frame_id]], names[a.class_id], tuple(a.geometry))
                  for a in annotations_repo.list_annotations(project.conn))


def test_cvat_folder_imports_every_subset_as_a_source(project, tmp_path):
    _cvat_layout(tmp_path / "cvat")
    (tmp_path / "cvat" / "annotations" / "captions_train.json").write_text(
        json.dumps({"images": [], "annotations": []}))    # Datumaro's other tasks: passed over
    summary = import_annotations(project, tmp_path / "cvat", "coco")
    assert summary["subsets"] == {"train": 3, "val": 2}
    assert summary["images"] == 5 and summary["annotations"] == 3 * 2 + 2 * 2
    assert summary["new_classes"] == ["rusty bolt", "Käfer", "type 2"]
    state = _state(project)
    assert sorted({s for s, _, _ in state}) == ["train", "val"]
    assert ("val", "Käfer", (2.0, 3.0, 10.0, 9.0)) in state
    assert ("val", "type 2", (12.0, 3.0, 20.0, 9.0)) in state
    assert sum(1 for s, c, _ in state if c == "Käfer") == 5
    # the same folder again: nothing new, nothing twice
    import_annotations(project, tmp_path / "cvat", "coco")
    assert len(sources_repo.list_sources(project.conn)) == 2


def test_subsets_sharing_one_image_folder_stay_apart(project, tmp_path):
    _cvat_layout(tmp_path / "dm", common=True)
    summary = import_annotations(project, tmp_path / "dm", "coco")
    assert summary["sources"] == 2
    counts = {s.name: s.frame_count for s in sources_repo.list_sources(project.conn)}
    assert counts == {"images (train)": 3, "images (val)": 2}


def test_one_folder_per_subset_with_its_json(project, tmp_path):
    """Roboflow's layout: train/_annotations.coco.json beside the train images."""
    for seed, (subset, n) in enumerate((("train", 2), ("val", 1))):
        doc = _subset_doc(subset, n, 10 * seed, tmp_path / "rf" / subset)
        (tmp_path / "rf" / subset / "_annotations.coco.json").write_text(json.dumps(doc))
    summary = import_annotations(project, tmp_path / "rf", "coco")
    assert summary["subsets"] == {"train": 2, "val": 1}
    assert {s.name for s in sources_repo.list_sources(project.conn)} == {"train", "val"}


@pytest.mark.parametrize("break_it, message", [
    (lambda d: d["categories"].append({"id": 9, "name": ""}),
     r"instances_val.json: field 'categories\[2\].name'"),
    (lambda d: d["images"][1].update(file_name="train_0.png"),
     r"instances_val.json: field 'images': image 'train_0.png' is listed in .*instances_train"),
    (lambda d: d.pop("annotations"), r"instances_val.json: field 'annotations': .* a list"),
])
def test_a_bad_file_imports_nothing_and_is_named(project, tmp_path, break_it, message):
    _cvat_layout(tmp_path / "cvat", common=True)
    path = tmp_path / "cvat" / "annotations" / "instances_val.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    break_it(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        import_annotations(project, tmp_path / "cvat", "coco")
    assert store_state(project) == ([], [], [], [], [])


def test_a_folder_without_annotation_files_is_refused(project, tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no COCO .json annotation file here"):
        import_annotations(project, tmp_path / "empty", "coco")


def test_yolo_list_files_over_one_folder_keep_their_subsets(project, tmp_path):
    root = tmp_path / "y"
    for i in range(4):
        write_image(root / "images" / f"{i}.png", 48, 32, i)
        (root / "labels").mkdir(exist_ok=True)
        (root / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "train.txt").write_text("images/0.png\nimages/1.png\nimages/2.png\n")
    (root / "val.txt").write_text("images/3.png\n")
    (root / "data.yaml").write_text("train: train.txt\nval: val.txt\nnames: ['rusty bolt']\n")
    summary = import_annotations(project, root, "yolo")
    assert summary["subsets"] == {"train": 3, "val": 1}
    counts = {s.name: s.frame_count for s in sources_repo.list_sources(project.conn)}
    assert counts == {"images (train)": 3, "images (val)": 1}
