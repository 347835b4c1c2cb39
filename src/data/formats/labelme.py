"""labelme: one JSON per image with `shapes` (rectangle / polygon) and image-level `flags`,
which hold LabelLoop's frame tags."""
from __future__ import annotations

import json
from pathlib import Path

from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file, read_json
from src.data.formats.model import LabeledImage, LabeledSet, LabeledShape, number
from src.data.geometry import Box, Polygon
from src.errors import DatasetError

LABELME_VERSION = "5.5.0"


def read(path: Path) -> LabeledSet:
    """Read every labelme .json file of the folder `path` (or the one file `path`)."""
    files = [path] if path.is_file() else sorted(path.glob("*.json")) if path.is_dir() else []
    if not files:
        raise DatasetError("no labelme .json files here", path=path,
                           hint="pass the folder holding the labelme JSON files")
    images, classes = [], {}
    skipped: dict[str, int] = {}
    for file in files:
        image = _read_file(file, skipped)
        for label in [s.label for s in image.shapes] + image.tags:
            classes.setdefault(label.casefold(), label)
        images.append(image)
    return LabeledSet(images, list(classes.values()), skipped)


def _read_file(file: Path, skipped: dict) -> LabeledImage:
    data = read_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DatasetError("not a labelme file (no 'shapes' list)", path=file, field="shapes")
    name = data.get("imagePath")
    if not isinstance(name, str) or not (file.parent / name).is_file():
        raise DatasetError(f"image {name!r} not found next to the JSON file", path=file,
                           field="imagePath", hint="keep the image beside its labelme JSON")
    width = int(number(data.get("imageWidth"), "imageWidth", file))
    height = int(number(data.get("imageHeight"), "imageHeight", file))
    shapes = [s for i, raw in enumerate(data["shapes"])
              if (s := _shape(raw, f"shapes[{i}]", file, skipped)) is not None]
    flags = data.get("flags") or {}
    if not isinstance(flags, dict):
        raise DatasetError("expected an object of flags", path=file, field="flags")
    tags = [str(k) for k, v in flags.items() if v is True]
    return LabeledImage((file.parent / name).resolve(), shapes, width, height, tags=tags)


def _shape(raw, where: str, file: Path, skipped: dict) -> LabeledShape | None:
    if not isinstance(raw, dict):
        raise DatasetError("expected an object", path=file, field=where)
    label, kind, points = raw.get("label"), raw.get("shape_type", "polygon"), raw.get("points")
    if not isinstance(label, str) or not label.strip():
        raise DatasetError(f"expected a label, got {label!r}", path=file, field=f"{where}.label")
    if kind not in ("rectangle", "polygon"):
        key = f"labelme '{kind}' shapes"
        skipped[key] = skipped.get(key, 0) + 1
        return None
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2
                                               for p in points):
        raise DatasetError("expected a list of [x, y] points", path=file,
                           field=f"{where}.points")
    pts = [(number(x, f"{where}.points", file), number(y, f"{where}.points", file))
           for x, y in points]
    if kind == "rectangle":
        if len(pts) != 2:
            raise DatasetError(f"a rectangle needs 2 points, got {len(pts)}", path=file,
                               field=f"{where}.points")
        return LabeledShape(label.strip(), Box.from_corners(*pts))
    if len(pts) < 3:
        raise DatasetError(f"a polygon needs at least 3 points, got {len(pts)}", path=file,
                           field=f"{where}.points")
    return LabeledShape(label.strip(), Polygon(tuple(pts)))


def write(labeled: LabeledSet, out: Path) -> dict:
    """<name>.<ext> + <name>.json for every image, in `out`."""
    for image in labeled.images:
        name = image.export_name
        place_file(image.path, out / name)
        shapes = [_shape_json(item) for item in image.shapes]
        doc = {"version": LABELME_VERSION, "flags": {t: True for t in image.tags},
               "shapes": shapes, "imagePath": name, "imageData": None,
               "imageHeight": image.height, "imageWidth": image.width}
        write_text(out / (Path(name).stem + ".json"), json.dumps(doc, indent=1))
    return {"images": len(labeled.images),
            "annotations": sum(len(i.shapes) for i in labeled.images)}


def _shape_json(item: LabeledShape) -> dict:
    if isinstance(item.shape, Polygon):
        points, kind = [list(p) for p in item.shape.points], "polygon"
    else:
        b = item.shape
        points, kind = [[b.x1, b.y1], [b.x2, b.y2]], "rectangle"
    return {"label": item.label, "points": points, "group_id": None, "description": "",
            "shape_type": kind, "flags": {}, "mask": None}
