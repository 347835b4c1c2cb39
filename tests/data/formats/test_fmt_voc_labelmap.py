"""VOC labelmap.txt: a CVAT-style VOC folder imports with its classes, and an export writes
the labelmap third-party readers (CVAT, Datumaro) need for classes outside the 20 VOC ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from format_files import write_image
from src.data.formats import export_annotations, import_annotations
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.errors import DatasetError

NAMES = ["traffic light", "Fußgänger", "car 2", "unused 7"]   # the last one has no objects


def _cvat_voc(root: Path) -> None:
    """What CVAT's 'PASCAL VOC 1.1' export looks like (subset 'default')."""
    objects = {"a": [("traffic light", (5, 3, 20, 18)), ("Fußgänger", (30, 10, 44, 30))],
               "b": [("car 2", (1, 1, 48, 32))]}
    for seed, (stem, objs) in enumerate(objects.items()):
        write_image(root / "JPEGImages" / f"{stem}.png", 48, 32, seed)
        xml = "".join(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<occluded>0</occluded><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox><attributes>"
            "</attributes></object>" for name, (x1, y1, x2, y2) in objs)
        path = root / "Annotations" / f"{stem}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<annotation><folder></folder><filename>{stem}.png</filename>"
                        "<source><database>Unknown</database><annotation>Unknown</annotation>"
                        "</source><size><width>48</width><height>32</height><depth>3</depth>"
                        f"</size><segmented>0</segmented>{xml}</annotation>", encoding="utf-8")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "default.txt").write_text("a\nb\n")
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
        + "".join(f"{n}:{i * 40},10,200::\n" for i, n in enumerate(NAMES, 1)), encoding="utf-8")


def _datumaro_labelmap(path: Path) -> list[tuple[str, str]]:
    """labelmap.txt parsed the way Datumaro's VOC reader does (split on ':'), with the
    checks it makes: a name, and a colour of three 0..255 integers."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, color, parts, actions = line.split(":")
        rgb = [int(c) for c in color.split(",")]
        assert name and len(rgb) == 3 and all(0 <= c <= 255 for c in rgb), line
        out.append((name, color))
    return out


def _state(project) -> tuple[list[str], list[tuple]]:
    classes = classes_repo.list_classes(project.conn)
    names = {c.id: c.name for c in classes}
    anns = sorted((names[a.class_id], json.dumps(a.geometry))
                  for a in annotations_repo.list_annotations(project.conn))
    return [c.name for c in classes], anns


def test_cvat_voc_folder_imports_classes_in_labelmap_order(project, tmp_path):
    _cvat_voc(tmp_path / "cvat")
    summary = import_annotations(project, tmp_path / "cvat", "voc")
    assert summary["new_classes"] == NAMES               # no 'background', the unused kept
    names, anns = _state(project)
    assert names == NAMES
    assert ("Fußgänger", json.dumps([29.0, 9.0, 44.0, 30.0])) in anns and len(anns) == 3


def test_cvat_voc_subsets_become_sources(project, tmp_path):
    _cvat_voc(tmp_path / "cvat")
    main = tmp_path / "cvat" / "ImageSets" / "Main"
    (main / "default.txt").unlink()
    (main / "train.txt").write_text("a\n")
    (main / "val.txt").write_text("b\n")
    (main / "car 2_train.txt").write_text("a -1\nb 1\n")      # VOC's per-class lists
    summary = import_annotations(project, tmp_path / "cvat", "voc")
    assert summary["subsets"] == {"train": 1, "val": 1}
    assert {s.name: s.frame_count for s in sources_repo.list_sources(project.conn)} == \
        {"JPEGImages (train)": 1, "JPEGImages (val)": 1}
    (main / "val.txt").write_text("a\nb\n")           # not a partition: one source
    with Project.open(tmp_path / "again") as again:
        assert "subsets" not in import_annotations(again, tmp_path / "cvat", "voc")
        assert [s.name for s in sources_repo.list_sources(again.conn)] == ["JPEGImages"]


def test_voc_export_writes_labelmap_and_round_trips_names(project, tmp_path):
    _cvat_voc(tmp_path / "cvat")
    import_annotations(project, tmp_path / "cvat", "voc")
    export_annotations(project, tmp_path / "out", "voc")
    labelmap = tmp_path / "out" / "labelmap.txt"
    assert labelmap.read_text(encoding="utf-8").splitlines()[0] == \
        "# label:color_rgb:parts:actions"
    parsed = _datumaro_labelmap(labelmap)
    assert parsed[0] == ("background", "0,0,0")
    assert [name for name, _ in parsed[1:]] == NAMES
    assert len({color for _, color in parsed}) == len(parsed)   # one colour per class
    with Project.open(tmp_path / "again") as again:
        import_annotations(again, tmp_path / "out", "voc")
        assert _state(again) == _state(project)


def test_voc_export_refuses_a_class_labelmap_cannot_hold(project, tmp_path):
    classes_repo.ensure_class(project.conn, "ratio 1:2")
    with pytest.raises(DatasetError, match=r"'ratio 1:2' cannot be written in labelmap.txt"):
        export_annotations(project, tmp_path / "out", "voc")
    assert not (tmp_path / "out").exists()


def test_bad_labelmap_line_names_file_and_line(project, tmp_path):
    _cvat_voc(tmp_path / "cvat")
    (tmp_path / "cvat" / "labelmap.txt").write_text("background:0,0,0::\n:1,2,3::\n")
    with pytest.raises(DatasetError, match=r"labelmap.txt: field 'line 2'.*empty"):
        import_annotations(project, tmp_path / "cvat", "voc")
    assert classes_repo.list_classes(project.conn) == []
