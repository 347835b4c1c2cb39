"""labelme: one JSON per image with `shapes` (rectangle / polygon) and image-level `flags`,
which hold LabelLoop's frame tags."""
from __future__ import annotations

import json
from pathlib import Path

from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file, read_json, resolve_image_ref
from src.data.formats.model import (LabeledImage, LabeledSet, LabeledShape, class_name,
                                    image_size, number)
from src.data.geometry import Box, Polygon
from src.errors import DatasetError

LABELME_VERSION = "5.5.0"


def read(path: Path, images_dir: Path | None = None) -> LabeledSet:
    """Read every labelme .json file of the folder `path` (or the one file `path`), or, when
    it holds none, of each of its sub-folders (one per split, as LabelLoop exports a dataset
    version); images are found beside the JSON files or in `images_dir`."""
    groups = _files(path)
    images, classes = [], {}
    skipped: dict[str, int] = {}
    for split, files in groups:
        for file in files:
            image = _read_file(file, images_dir, skipped)
            if split is not None:
                image.split = split
            for label in [s.label for s in image.shapes] + image.tags:
                classes.setdefault(label.casefold(), label)
            images.append(image)
    subsets = [split for split, _ in groups if split is not None]
    return LabeledSet(images, list(classes.values()), skipped, subsets=subsets)


def _files(path: Path) -> list[tuple[str | None, list[Path]]]:
    """(split folder name or None, its .json files)."""
    if path.is_file():
        return [(None, [path])]
    files = sorted(path.glob("*.json")) if path.is_dir() else []
    if files:
        return [(None, files)]
    groups = [(d.name, sorted(d.glob("*.json"))) for d in sorted(path.iterdir())
              if d.is_dir() and not d.name.startswith(".")] if path.is_dir() else []
    groups = [(name, found) for name, found in groups if found]
    if not groups:
        raise DatasetError("no labelme .json files here", path=path,
                           hint="pass the folder holding the labelme JSON files")
    return groups


def _read_file(file: Path, images_dir: Path | None, skipped: dict) -> LabeledImage:
    data = read_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DatasetError("not a labelme file (no 'shapes' list)", path=file, field="shapes")
    width = image_size(number(data.get("imageWidth"), "imageWidth", file), "imageWidth", file)
    height = image_size(number(data.get("imageHeight"), "imageHeight", file), "imageHeight",
                        file)
    image = resolve_image_ref(file.parent, data.get("imagePath"), images_dir, path=file,
                              field="imagePath")
    shapes = [s for i, raw in enumerate(data["shapes"])
              if (s := _shape(raw, f"shapes[{i}]", file, skipped)) is not None]
    flags = data.get("flags") or {}
    if not isinstance(flags, dict):
        raise DatasetError("expected an object of flags", path=file, field="flags")
    tags = [class_name(k, "flags", file) for k, v in flags.items() if v is True]
    return LabeledImage(image, shapes, width, height, tags=tags)


def _shape(raw, where: str, file: Path, skipped: dict) -> LabeledShape | None:
    if not isinstance(raw, dict):
        raise DatasetError("expected an object", path=file, field=where)
    label, kind, points = raw.get("label"), raw.get("shape_type", "polygon"), raw.get("points")
    label = class_name(label, f"{where}.label", file)
    if kind not in ("rectangle", "polygon"):
        key = (f"labelme {kind[:40]!r} shapes" if isinstance(kind, str)
               else "labelme shapes of no known type")
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
        return LabeledShape(label, Box.from_corners(*pts))
    if len(pts) < 3:
        raise DatasetError(f"a polygon needs at least 3 points, got {len(pts)}", path=file,
                           field=f"{where}.points")
    return LabeledShape(label, Polygon(tuple(pts)))


def write(labeled: LabeledSet, out: Path) -> dict:
    """<name>.<ext> + <name>.json for every image, in `out`, or in out/<split>/ when the set
    has splits (a dataset version): labelme opens one folder at a time."""
    for image in labeled.images:
        name = image.export_name
        folder = out / image.split if labeled.subsets else out
        place_file(image.path, folder / name)
        shapes = [_shape_json(item) for item in image.shapes]
        doc = {"version": LABELME_VERSION, "flags": {t: True for t in image.tags},
               "shapes": shapes, "imagePath": name, "imageData": None,
               "imageHeight": image.height, "imageWidth": image.width}
        write_text(folder / (Path(name).stem + ".json"), json.dumps(doc, indent=1))
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
