"""Untrusted datasets: image references never reach outside the dataset (or --images DIR),
only the images the annotations name are imported, and bombs (pixels, YAML aliases, JSON
size, nesting, huge numbers) are refused before they cost memory, with nothing stored."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import yaml

from format_files import digest, store_state, write_image
from src.data.formats import import_annotations
from src.data.formats.voc import write as write_voc
from src.data.formats.model import LabeledImage, LabeledSet, LabeledShape
from src.data.geometry import Box
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.errors import AnnotationError, DatasetError, LabelLoopError


def _coco(file_name, *, width=48, height=32, bbox=(1, 1, 10, 10), categories=None) -> dict:
    return {"images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": list(bbox)}],
            "categories": categories or [{"id": 1, "name": "car"}]}


def _labelme(image_path, *, label="car", flags=None, points=((1, 1), (9, 9))) -> dict:
    return {"version": "5.5.0", "flags": flags or {}, "imagePath": image_path,
            "imageData": None, "imageWidth": 48, "imageHeight": 32,
            "shapes": [{"label": label, "points": [list(p) for p in points],
                        "shape_type": "rectangle"}]}


def _voc(filename: str) -> str:
    return (f"<annotation><filename>{filename}</filename><size><width>48</width>"
            "<height>32</height></size><object><name>car</name><bndbox><xmin>2</xmin>"
            "<ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")


@pytest.fixture
def layout(tmp_path) -> Path:
    """ds/ (the dataset: a.png, b.png, c.png) beside outside/secret.png, and
    ds/link.png, a symlink to the secret."""
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        write_image(tmp_path / "ds" / name, 48, 32, i)
    write_image(tmp_path / "outside" / "secret.png", 48, 32, 99)
    (tmp_path / "ds" / "link.png").symlink_to(tmp_path / "outside" / "secret.png")
    return tmp_path


def _escape_refs(root: Path) -> list[str]:
    return ["../outside/secret.png", str(root / "outside" / "secret.png"), "link.png"]


def _write_dataset(root: Path, fmt: str, ref: str) -> Path:
    """A one-image dataset of `fmt` in root/ds naming the image `ref`; returns its path."""
    ds = root / "ds"
    if fmt == "coco":
        (ds / "x.json").write_text(json.dumps(_coco(ref)))
        return ds / "x.json"
    if fmt == "labelme":
        (ds / "x.json").write_text(json.dumps(_labelme(ref)))
        return ds / "x.json"
    if fmt == "voc":
        (ds / "Annotations").mkdir(exist_ok=True)
        (ds / "Annotations" / "x.xml").write_text(_voc(ref))
        return ds
    (ds / "list.txt").write_text(ref + "\n")
    (ds / "data.yaml").write_text(yaml.safe_dump({"train": "list.txt", "names": ["car"]}))
    return ds / "data.yaml"


@pytest.mark.parametrize("fmt", ["coco", "labelme", "voc", "yolo"])
@pytest.mark.parametrize("which", ["dotdot", "absolute", "symlink"])
def test_references_outside_the_dataset_are_refused_naming_the_entry(project, layout, fmt,
                                                                     which):
    ref = _escape_refs(layout)[["dotdot", "absolute", "symlink"].index(which)]
    path = _write_dataset(layout, fmt, ref)
    before = store_state(project)
    with pytest.raises(DatasetError, match="outside the dataset folder") as err:
        import_annotations(project, path, fmt)
    assert ref in str(err.value) and "--images" in str(err.value)
    assert store_state(project) == before
    assert not (project.root / "imports").exists() or not any(
        (project.root / "imports").iterdir())


def test_yolo_split_folder_outside_the_dataset_is_refused(project, layout):
    (layout / "ds" / "data.yaml").write_text(yaml.safe_dump(
        {"path": str(layout), "train": "outside", "names": ["car"]}))
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        import_annotations(project, layout / "ds" / "data.yaml", "yolo")
    assert sources_repo.list_sources(project.conn) == []


def test_images_dir_allows_an_outside_folder_explicitly(project, layout):
    path = _write_dataset(layout, "coco", "secret.png")
    with pytest.raises(DatasetError, match="not found"):
        import_annotations(project, path, "coco")
    summary = import_annotations(project, path, "coco", images=layout / "outside")
    assert summary["images"] == 1
    frame, = frames_repo.list_frames(project.conn)
    assert digest(project.abspath(frame.image_path)) == digest(layout / "outside" / "secret.png")


def test_only_the_referenced_images_are_imported_and_a_repeat_reuses_them(project, layout):
    (layout / "ds" / "link.png").unlink()
    path = _write_dataset(layout, "coco", "b.png")
    import_annotations(project, path, "coco")
    frame, = frames_repo.list_frames(project.conn)
    source, = sources_repo.list_sources(project.conn)
    assert source.frame_count == 1 and source.name == "ds"
    assert digest(project.abspath(frame.image_path)) == digest(layout / "ds" / "b.png")
    import_annotations(project, path, "coco")     # the same file again: same frame
    assert len(frames_repo.list_frames(project.conn)) == 1
    assert len(sources_repo.list_sources(project.conn)) == 1


@pytest.mark.parametrize("ref", [".hidden.png", "notes.txt"])
def test_hidden_and_non_image_references_are_typed_errors(project, layout, ref):
    (layout / "ds" / ref).write_bytes((layout / "ds" / "a.png").read_bytes())
    with pytest.raises(DatasetError, match="hidden|not a supported image"):
        import_annotations(project, _write_dataset(layout, "coco", ref), "coco")


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height pixels in a few dozen bytes (no pixel data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header(project, tmp_path):
    (tmp_path / "ds").mkdir()
    _png_header(tmp_path / "ds" / "bomb.png", 20000, 20000)
    (tmp_path / "ds" / "x.json").write_text(json.dumps(_coco("bomb.png", width=20000,
                                                             height=20000)))
    with pytest.raises(LabelLoopError,
                       match="400,000,000 pixels is over .*LABELLOOP_MAX_IMAGE_PIXELS"):
        import_annotations(project, tmp_path / "ds" / "x.json", "coco")
    assert frames_repo.list_frames(project.conn) == []


def test_the_pixel_limit_is_configurable(project, layout, monkeypatch):
    (layout / "ds" / "link.png").unlink()
    path = _write_dataset(layout, "coco", "a.png")
    monkeypatch.setenv("LABELLOOP_MAX_IMAGE_PIXELS", str(48 * 32 - 1))
    with pytest.raises(LabelLoopError, match="1,536 pixels is over the limit of 1,535") as err:
        import_annotations(project, path, "coco")
    assert err.value.path == str(layout / "ds" / "a.png")       # the user's file, not a link
    assert not any((project.root / "imports").iterdir())
    monkeypatch.setenv("LABELLOOP_MAX_IMAGE_PIXELS", str(48 * 32))
    assert import_annotations(project, path, "coco")["images"] == 1


def test_a_yaml_alias_bomb_is_refused_before_it_expands(project, tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (tmp_path / "data.yaml").write_text("\n".join(lines) + "\nnames: *a8\ntrain: .\n")
    assert len((tmp_path / "data.yaml").read_bytes()) < 600   # 10**9 nodes expanded
    with pytest.raises(DatasetError, match="LABELLOOP_MAX_YAML_NODES"):
        import_annotations(project, tmp_path / "data.yaml", "yolo")


def test_json_over_the_size_limit_names_the_limit(project, layout, monkeypatch):
    path = _write_dataset(layout, "coco", "a.png")
    monkeypatch.setenv("LABELLOOP_MAX_JSON_BYTES", "100")
    with pytest.raises(DatasetError, match="over the limit of 100 bytes.*LABELLOOP_MAX_JSON_BYTES"):
        import_annotations(project, path, "coco")


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_deep_nesting_is_a_typed_error(project, tmp_path, fmt):
    if fmt == "coco":
        path = tmp_path / "x.json"
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path = tmp_path / "data.yaml"
        path.write_text("names: " + "[" * 1500 + "]" * 1500 + "\n")
    with pytest.raises(DatasetError, match="nested too deeply"):
        import_annotations(project, path, fmt)


@pytest.mark.parametrize("change", [
    {"width": 10 ** 400}, {"bbox": [1, 1, 10 ** 400, 5]}, {"width": 2 ** 63},
    {"categories": [{"id": 1, "name": "a\nb"}]}, {"categories": [{"id": 1, "name": "x" * 300}]},
])
def test_huge_numbers_and_bad_class_names_in_coco(project, layout, change):
    doc = _coco("a.png", **{k: v for k, v in change.items() if k != "bbox"},
                bbox=change.get("bbox", (1, 1, 10, 10)))
    (layout / "ds" / "x.json").write_text(json.dumps(doc))
    before = store_state(project)
    with pytest.raises(DatasetError) as err:
        import_annotations(project, layout / "ds" / "x.json", "coco")
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    assert store_state(project) == before


@pytest.mark.parametrize("token", ["²", "9" * 5000, "-1", "0x1"])
def test_yolo_class_index_that_is_not_a_small_integer(project, layout, token):
    (layout / "ds" / "images").mkdir()
    write_image(layout / "ds" / "images" / "a.png", 48, 32, 5)
    (layout / "ds" / "labels").mkdir()
    (layout / "ds" / "labels" / "a.txt").write_text(f"{token} 0.5 0.5 0.2 0.2\n")
    (layout / "ds" / "data.yaml").write_text(yaml.safe_dump({"train": "images",
                                                             "names": ["car"]}))
    with pytest.raises(DatasetError, match="line 1: class .* is not an index 0..0"):
        import_annotations(project, layout / "ds" / "data.yaml", "yolo")


def test_labelme_flag_and_point_problems_name_the_file(project, layout):
    path = layout / "ds" / "x.json"
    path.write_text(json.dumps(_labelme("a.png", flags={"": True})))
    with pytest.raises(DatasetError, match="x.json: field 'flags': a class name cannot be empty"):
        import_annotations(project, path, "labelme")
    path.write_text(json.dumps(_labelme("a.png")).replace("[1, 1]", "[1e999, 1]"))
    with pytest.raises(DatasetError, match="x.json: field 'shapes\\[0\\].points'"):
        import_annotations(project, path, "labelme")


def test_coco_categories_differing_in_case_count_as_one_new_class(project, layout):
    doc = _coco("a.png", categories=[{"id": 1, "name": "Car"}, {"id": 2, "name": "car"}])
    (layout / "ds" / "x.json").write_text(json.dumps(doc))
    summary = import_annotations(project, layout / "ds" / "x.json", "coco")
    assert summary["classes_created"] == 1 == len(classes_repo.list_classes(project.conn))


def test_class_names_with_control_characters_are_refused_at_entry(project):
    for name in ("a\nb", "nul\x00", "x" * 81):
        with pytest.raises(AnnotationError):
            classes_repo.add_class(project.conn, name)
    assert classes_repo.add_class(project.conn, "ok name").name == "ok name"


def test_voc_export_refuses_a_class_xml_cannot_hold(tmp_path):
    write_image(tmp_path / "a.png", 48, 32, 1)
    labeled = LabeledSet([LabeledImage(tmp_path / "a.png", [LabeledShape("bad\x01", Box(
        1, 1, 5, 5))], 48, 32)], ["bad\x01"])
    with pytest.raises(DatasetError, match="control characters"):
        write_voc(labeled, tmp_path / "out")
