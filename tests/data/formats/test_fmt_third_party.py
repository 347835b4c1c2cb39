"""Our exports as a third-party reader sees them: supervision (Roboflow's converter) loads
each format with the class names intact (spaces, umlauts, digits) and the same boxes; a VOC
export converted to COCO by supervision imports back into the store unchanged."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
from dataset_synth import add_source  # noqa: E402

from format_files import digest  # noqa: E402
from src.data.formats import export_annotations, import_annotations  # noqa: E402
from src.data.geometry import Polygon, shape_of  # noqa: E402
from src.db import annotations as annotations_repo  # noqa: E402
from src.db import classes as classes_repo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db.project import Project  # noqa: E402
from test_fmt_round_trips import NAMES, odd_frames, store  # noqa: E402


def _expected(project) -> dict[str, list[tuple]]:
    """image digest -> sorted (class, bbox x1 y1 x2 y2, polygon area or None)."""
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    images = {f.id: digest(project.abspath(f.image_path))
              for f in frames_repo.list_frames(project.conn)}
    out: dict[str, list[tuple]] = {}
    for a in annotations_repo.list_annotations(project.conn):
        shape = shape_of(a)
        box = shape.bbox() if isinstance(shape, Polygon) else shape
        area = shape.area if isinstance(shape, Polygon) else None
        out.setdefault(images[a.frame_id], []).append((names[a.class_id], box.to_list(), area))
    return {k: sorted(v) for k, v in out.items()}


def _loaded(dataset) -> dict[str, list[tuple]]:
    """The same view of a supervision DetectionDataset (mask pixel count for the area)."""
    out = {}
    for path in dataset.image_paths:
        det = dataset.annotations[path]
        rows = []
        for i in range(len(det)):
            area = int(det.mask[i].sum()) if det.mask is not None else None
            rows.append((dataset.classes[int(det.class_id[i])],
                         [float(v) for v in det.xyxy[i]], area))
        out[digest(Path(path))] = sorted(rows)
    return out


def _same(loaded: dict, expected: dict, box_tol: float) -> None:
    assert loaded.keys() == expected.keys()
    for key, rows in expected.items():
        got = loaded[key]
        assert [r[0] for r in got] == [r[0] for r in rows]
        for (_, box, area), (_, want_box, want_area) in zip(got, rows):
            assert box == pytest.approx(want_box, abs=box_tol)
            if want_area is not None:       # the mask covers the polygon, give or take its edge
                assert area == pytest.approx(want_area, abs=2 * (want_box[2] - want_box[0] +
                                                                 want_box[3] - want_box[1]))


def _load(fmt: str, out: Path, masks: bool):
    if fmt == "voc":
        return sv.DetectionDataset.from_pascal_voc(str(out / "JPEGImages"),
                                                   str(out / "Annotations"))
    if fmt == "coco":
        return sv.DetectionDataset.from_coco(str(out / "images" / "train"),
                                             str(out / "annotations" / "instances_train.json"),
                                             force_masks=masks)
    if fmt == "yolo":
        return sv.DetectionDataset.from_yolo(str(out / "images" / "train"),
                                             str(out / "labels" / "train"),
                                             str(out / "data.yaml"), force_masks=masks)
    return sv.DetectionDataset.from_labelme(str(out), str(out), force_masks=masks)


@pytest.mark.parametrize("fmt, kind", [(f, "box") for f in ("voc", "coco", "yolo", "labelme")]
                         + [(f, "polygon") for f in ("coco", "yolo", "labelme")])
def test_supervision_reads_our_export(project, tmp_path, fmt, kind):
    add_source(project, "cam", odd_frames(3, kind))
    export_annotations(project, tmp_path / "out", fmt)
    dataset = _load(fmt, tmp_path / "out", masks=kind == "polygon")
    assert sorted(dataset.classes) == sorted(NAMES)
    # boxes: float32 in supervision; polygons: its box comes from the rasterized mask
    _same(_loaded(dataset), _expected(project), 1e-3 if kind == "box" else 1.01)


def test_voc_export_converted_to_coco_by_supervision_imports_back(project, tmp_path):
    add_source(project, "cam", odd_frames(3, "box"))
    export_annotations(project, tmp_path / "voc", "voc")
    dataset = sv.DetectionDataset.from_pascal_voc(str(tmp_path / "voc" / "JPEGImages"),
                                                  str(tmp_path / "voc" / "Annotations"))
    dataset.as_coco(images_directory_path=str(tmp_path / "coco" / "images"),
                    annotations_path=str(tmp_path / "coco" / "instances.json"))
    with Project.open(tmp_path / "again") as again:
        import_annotations(again, tmp_path / "coco" / "instances.json", "coco")
        assert store(again) == store(project)
        assert sorted(c.name for c in classes_repo.list_classes(again.conn)) == sorted(NAMES)
    assert np.all(np.isfinite([v for d in dataset.annotations.values() for v in d.xyxy.ravel()]))
