"""Fuzzing every importer through the CLI: valid files mutated (numbers, strings, nesting,
paths, encodings) either import or exit 2 with one line, never a traceback, and a refused
import leaves the store exactly as it was."""
from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from format_files import store_state, write_image
from src.cli import main

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

NASTY_TEXT = st.sampled_from([
    "", " ", "../outside/secret.png", "/etc/passwd", "link.png", ".hidden.png", "notes.txt",
    "b.png", "a\nb", "nul\x00", "x" * 300, "x/" * 2000, "²", "\ud800", "Car", "car", "1e999",
    "nan", "-0.5", "9" * 5000, "0x10", "images", "../../..", "a.png/..", "\u2028"])
NASTY_NUMBERS = st.one_of(
    st.sampled_from([10 ** 400, -10 ** 400, 2 ** 63, 2 ** 64 + 1, 0, -1, 1, 1e308, 0.5]),
    st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True))
NASTY_SCALAR = st.one_of(NASTY_TEXT, NASTY_NUMBERS, st.none(), st.booleans(), st.text(max_size=8))
NASTY = st.one_of(NASTY_SCALAR, st.lists(NASTY_SCALAR, max_size=3),
                  st.dictionaries(NASTY_TEXT, NASTY_SCALAR, max_size=2))


def _paths(tree, prefix=()) -> list[tuple]:
    """Every place in a JSON-like tree (including the root)."""
    out = [prefix]
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) \
        if isinstance(tree, list) else []
    for key, value in items:
        out += _paths(value, prefix + (key,))
    return out


def _replaced(tree, path: tuple, value):
    if not path:
        return value
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


@st.composite
def mutated_tree(draw, tree):
    """`tree` with one to three places replaced by nasty values."""
    for _ in range(draw(st.integers(1, 3))):
        tree = _replaced(tree, draw(st.sampled_from(_paths(tree))), draw(NASTY))
    return tree


@st.composite
def raw_mutation(draw, text: str) -> bytes:
    """The file's bytes re-encoded, truncated, nested deep or with a byte broken."""
    kind = draw(st.sampled_from(["utf-16", "latin-1", "truncate", "nest", "byte", "none"]))
    data = _utf8(text)
    if kind == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    if kind == "latin-1":
        return text.replace("a", "\xe9").encode("latin-1", "replace")
    if kind == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "nest":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"[" * 3000 + b"]" * 3000 + data[at:]
    if kind == "byte" and data:
        at = draw(st.integers(0, len(data) - 1))
        broken = draw(st.sampled_from([0, 0xFF, 0xC3, ord("\n")]))
        return data[:at] + bytes([broken]) + data[at + 1:]
    return data


def _utf8(text: str) -> bytes:
    """UTF-8, lone surrogates included (as a broken writer would leave them)."""
    return text.encode("utf-8", "surrogatepass")


def check_import(project, path: Path, fmt: str) -> None:
    """The property: exit 0, or exit 2 with one line and the store unchanged."""
    before = store_state(project)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = main(["--project", str(project.root), "import", str(path), "--format", fmt])
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert err.getvalue().count("\n") == 1, err.getvalue()
        assert store_state(project) == before


@pytest.fixture
def ds(tmp_path) -> Path:
    """ds/ with a.png and b.png (48x32), a symlink to an image outside, outside/secret.png."""
    write_image(tmp_path / "ds" / "a.png", 48, 32, 1)
    write_image(tmp_path / "ds" / "b.png", 48, 32, 2)
    write_image(tmp_path / "outside" / "secret.png", 48, 32, 3)
    (tmp_path / "ds" / "link.png").symlink_to(tmp_path / "outside" / "secret.png")
    return tmp_path / "ds"


COCO = {"images": [{"id": 1, "file_name": "a.png", "width": 48, "height": 32},
                   {"id": 2, "file_name": "b.png", "width": 48, "height": 32}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8]},
                        {"id": 2, "image_id": 2, "category_id": 2,
                         "segmentation": [[1, 1, 20, 1, 10, 20]]}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}

LABELME = {"version": "5.5.0", "flags": {"day": True}, "imagePath": "a.png", "imageData": None,
           "imageWidth": 48, "imageHeight": 32,
           "shapes": [{"label": "car", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"},
                      {"label": "person", "points": [[1, 1], [20, 3], [10, 30]],
                       "shape_type": "polygon"}]}

VOC_FIELDS = {"filename": "a.png", "width": "48", "height": "32", "name": "car",
              "xmin": "2", "ymin": "3", "xmax": "20", "ymax": "30"}
VOC = ("<annotation><filename>{filename}</filename><size><width>{width}</width>"
       "<height>{height}</height></size><object><name>{name}</name><bndbox>"
       "<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
       "</bndbox></object></annotation>")


@FUZZ
@given(data=st.data())
def test_coco_fuzz(project, ds, data):
    doc = data.draw(mutated_tree(COCO))
    text = json.dumps(doc)
    (ds / "x.json").write_bytes(data.draw(raw_mutation(text)) if data.draw(st.booleans())
                                else _utf8(text))
    check_import(project, ds / "x.json", "coco")


@FUZZ
@given(data=st.data())
def test_labelme_fuzz(project, ds, data):
    text = json.dumps(data.draw(mutated_tree(LABELME)))
    (ds / "a.json").write_bytes(data.draw(raw_mutation(text)) if data.draw(st.booleans())
                                else _utf8(text))
    check_import(project, ds, "labelme")


@FUZZ
@given(data=st.data())
def test_voc_fuzz(project, ds, data):
    fields = dict(VOC_FIELDS)
    for _ in range(data.draw(st.integers(1, 3))):
        value = data.draw(NASTY_SCALAR)
        fields[data.draw(st.sampled_from(sorted(fields)))] = escape(str(value)) \
            if not isinstance(value, int) or abs(value) < 10 ** 100 else "9" * 400
    text = VOC.format(**fields)
    (ds / "Annotations").mkdir(exist_ok=True)
    (ds / "Annotations" / "a.xml").write_bytes(data.draw(raw_mutation(text))
                                               if data.draw(st.booleans()) else _utf8(text))
    check_import(project, ds, "voc")


@FUZZ
@given(data=st.data())
def test_yolo_fuzz(project, ds, data):
    if not (ds / "images").exists():
        write_image(ds / "images" / "c.png", 48, 32, 4)
    config = data.draw(mutated_tree({"path": ".", "train": "images", "val": "list.txt",
                                     "names": {0: "car", 1: "person"}}))
    tokens = ["0", "0.5", "0.5", "0.2", "0.3"]
    for _ in range(data.draw(st.integers(0, 2))):
        tokens[data.draw(st.integers(0, 4))] = str(data.draw(NASTY_TEXT | NASTY_NUMBERS)
                                                   if data.draw(st.booleans()) else "1")[:6000]
    (ds / "labels").mkdir(exist_ok=True)
    (ds / "labels" / "c.txt").write_text(" ".join(tokens) + "\n1 0.1 0.1 0.5 0.1 0.3 0.6\n",
                                         encoding="utf-8", errors="surrogatepass")
    listed = data.draw(st.lists(NASTY_TEXT, max_size=2)) or ["a.png"]
    (ds / "list.txt").write_text("\n".join(listed) + "\n", encoding="utf-8",
                                 errors="surrogatepass")
    text = yaml.safe_dump(config)
    (ds / "data.yaml").write_bytes(data.draw(raw_mutation(text)) if data.draw(st.booleans())
                                   else _utf8(text))
    check_import(project, ds / "data.yaml", "yolo")
