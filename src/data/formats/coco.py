"""COCO detection JSON: images, categories, annotations with bbox [x, y, w, h] and
polygon or RLE-mask segmentations (masks are traced into polygons). Boxes are written with
an empty segmentation.

A folder holding several annotation files (annotations/instances_<subset>.json, as CVAT,
Datumaro and LabelLoop export, or <subset>/*.json) is read as one set: each image's `split`
is its file's subset name, and the classes are merged by name."""
from __future__ import annotations

import json
from pathlib import Path

from src.atomic_files import write_text_atomic as write_text
from src.data.formats import masks
from src.data.formats.files import place_file, read_json, resolve_image_ref
from src.data.formats.model import (SPLIT_NAMES, LabeledImage, LabeledSet, LabeledShape,
                                     class_name, image_size, number)
from src.data.geometry import Box, Polygon, box_to_coco, coco_to_box
from src.errors import DatasetError


def read(path: Path, images_dir: Path | None = None) -> LabeledSet:
    """Read a COCO JSON file, or every annotation file of a dataset folder (see the module
    docstring); images are looked for next to a file, in images/, images/<subset>/ or
    <subset>/ of the dataset folder, or in `images_dir`."""
    files = _find_json(path)
    if len(files) == 1:
        return _read_file(files[0][0], images_dir, files[0][1])
    parts = [_read_file(file, images_dir, subset) for file, subset in files]
    return _merge(parts, [file for file, _ in files])


def _read_file(json_path: Path, images_dir: Path | None, subset: str) -> LabeledSet:
    data = _load(json_path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"'{key}' must be a list", path=json_path, field=key,
                               hint="an instances (object detection) file is expected")
    categories = _categories(data["categories"], json_path)
    images = _images(data["images"], json_path, images_dir, subset)
    skipped: dict[str, int] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError("expected an object", path=json_path, field=where)
        image = images.get(_id(ann, "image_id", where, json_path))
        if image is None:
            raise DatasetError(f"image_id {ann.get('image_id')!r} is not in 'images'",
                               path=json_path, field=f"{where}.image_id")
        category = categories.get(_id(ann, "category_id", where, json_path))
        if category is None:
            raise DatasetError(f"category_id {ann.get('category_id')!r} is not in 'categories'",
                               path=json_path, field=f"{where}.category_id")
        for shape in _shapes(ann, where, json_path, image, skipped):
            image.shapes.append(LabeledShape(category, shape))
    return LabeledSet(list(images.values()), list(categories.values()), skipped)


def _merge(parts: list[LabeledSet], files: list[Path]) -> LabeledSet:
    """One set of several files' images; an image listed by two files is refused (its
    subset would be ambiguous and its objects counted twice)."""
    classes: dict[str, str] = {}
    skipped: dict[str, int] = {}
    owner: dict[Path, Path] = {}
    images = []
    for part, file in zip(parts, files):
        for image in part.images:
            if image.path in owner:
                raise DatasetError(f"image {image.path.name!r} is listed in {owner[image.path]}"
                                   " too", path=file, field="images",
                                   hint="keep each image in one annotation file")
            owner[image.path] = file
            images.append(image)
        for name in part.classes:
            classes.setdefault(name.casefold(), name)
        for key, count in part.skipped.items():
            skipped[key] = skipped.get(key, 0) + count
    return LabeledSet(images, list(classes.values()), skipped,
                      subsets=list(dict.fromkeys(image.split for image in images)))


def _find_json(path: Path) -> list[tuple[Path, str]]:
    """(annotation file, subset name) pairs: the file itself, the folder's *.json and
    annotations/*.json, else the *.json of each sub-folder (one subset per folder)."""
    if path.is_file():
        return [(path, _subset_of(path))]
    if not path.is_dir():
        raise DatasetError("not a file or folder", path=path)
    found = sorted(path.glob("*.json")) + sorted(path.glob("annotations/*.json"))
    instances = [f for f in found if f.name.startswith("instances_")]
    if instances:      # Datumaro writes person_keypoints_, captions_... of the same images too
        found = instances
    if found:
        return [(file, _subset_of(file)) for file in found]
    pairs = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(folder.glob("*.json"))
        pairs += [(f, folder.name if len(files) == 1 else _subset_of(f)) for f in files]
    if not pairs:
        raise DatasetError("no COCO .json annotation file here", path=path,
                           hint="pass the annotation file, or the folder holding annotations/")
    return pairs


def _subset_of(file: Path) -> str:
    """instances_val.json -> 'val' (COCO's, CVAT's and Datumaro's naming)."""
    return file.stem.removeprefix("instances_") or file.stem


def _load(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError("expected a JSON object with images, annotations, categories",
                           path=path)
    return data


def _id(obj: dict, key: str, where: str, path: Path) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DatasetError(f"expected an integer id, got {value!r}", path=path,
                           field=f"{where}.{key}")
    return value


def _categories(items: list, path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, cat in enumerate(items):
        where = f"categories[{i}]"
        if not isinstance(cat, dict):
            raise DatasetError("expected an object", path=path, field=where)
        cat_id = _id(cat, "id", where, path)
        name = class_name(cat.get("name"), f"{where}.name", path)
        if cat_id in out:
            raise DatasetError(f"duplicate category id {cat_id}", path=path, field=f"{where}.id")
        out[cat_id] = name
    return dict(sorted(out.items()))


def _images(items: list, path: Path, images_dir: Path | None,
            split: str) -> dict[int, LabeledImage]:
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    subdirs = tuple(dict.fromkeys(str(d.relative_to(root)) for d in (
        path.parent, path.parent / "images", root / "images" / split, root / "images",
        root / split)))
    out: dict[int, LabeledImage] = {}
    for i, img in enumerate(items):
        where = f"images[{i}]"
        if not isinstance(img, dict):
            raise DatasetError("expected an object", path=path, field=where)
        img_id = _id(img, "id", where, path)
        width = number(img.get("width"), f"{where}.width", path)
        height = number(img.get("height"), f"{where}.height", path)
        file = resolve_image_ref(root, img.get("file_name"), images_dir, path=path,
                                 field=f"{where}.file_name", subdirs=subdirs)
        if img_id in out:
            raise DatasetError(f"duplicate image id {img_id}", path=path, field=f"{where}.id")
        out[img_id] = LabeledImage(file, [], image_size(width, f"{where}.width", path),
                                   image_size(height, f"{where}.height", path), split=split)
    return out


def _shapes(ann: dict, where: str, path: Path, image: LabeledImage,
            skipped: dict) -> list[Box | Polygon]:
    """The annotation's polygons (one per part of a multi-part object or region of a mask),
    else its box."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        if len(seg) > 1:
            _count(skipped, "multi-part objects imported as one polygon per part")
        return [_polygon(flat, f"{where}.segmentation[{k}]", path) for k, flat in enumerate(seg)]
    if isinstance(seg, dict):
        return _mask_polygons(seg, f"{where}.segmentation", path, image, skipped)
    box = _box(ann, seg, where, path, skipped)
    return [box] if box is not None else []


def _mask_polygons(seg: dict, where: str, path: Path, image: LabeledImage,
                   skipped: dict) -> list[Polygon]:
    mask = masks.decode_rle(seg, path, where, (image.width, image.height))
    traced = masks.mask_to_polygons(mask)
    _count(skipped, "RLE masks imported as polygons")
    if len(traced.polygons) > 1:
        _count(skipped, "multi-part objects imported as one polygon per part")
    _count(skipped, "holes of RLE masks filled (a polygon has no holes)", traced.holes_filled)
    _count(skipped, "one-pixel-wide RLE mask regions imported as their bounding rectangle",
           traced.thin)
    _count(skipped, "empty RLE masks", traced.empty)
    return traced.polygons


def _count(skipped: dict, key: str, n: int = 1) -> None:
    if n:
        skipped[key] = skipped.get(key, 0) + n


def _polygon(flat, where: str, path: Path) -> Polygon:
    if not isinstance(flat, list) or len(flat) < 6 or len(flat) % 2:
        raise DatasetError("a polygon needs an even number (>= 6) of coordinates",
                           path=path, field=where)
    values = [number(v, where, path) for v in flat]
    return Polygon(tuple((values[i], values[i + 1]) for i in range(0, len(values), 2)))


def _box(ann: dict, seg, where: str, path: Path, skipped: dict) -> Box | None:
    if seg not in (None, []):
        raise DatasetError(f"unsupported segmentation {type(seg).__name__}", path=path,
                           field=f"{where}.segmentation")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DatasetError(f"expected [x, y, w, h], got {bbox!r}", path=path,
                           field=f"{where}.bbox")
    values = [number(v, f"{where}.bbox", path) for v in bbox]
    if values[2] <= 0 or values[3] <= 0:
        _count(skipped, "boxes of zero size")
        return None
    return coco_to_box(values)


def write(labeled: LabeledSet, out: Path) -> dict:
    """annotations/instances_<split>.json and images/<split>/ under `out`."""
    categories = [{"id": i + 1, "name": name, "supercategory": "none"}
                  for i, name in enumerate(labeled.classes)]
    cat_id = {name: i + 1 for i, name in enumerate(labeled.classes)}
    splits = sorted({img.split for img in labeled.images},
                    key=lambda s: SPLIT_NAMES.index(s) if s in SPLIT_NAMES else 9)
    next_ann = 1 + max((s.annotation_id or 0 for img in labeled.images for s in img.shapes),
                       default=0)
    total = 0
    for split in splits:
        images, anns = [], []
        for n, image in enumerate(i for i in labeled.images if i.split == split):
            image_id = image.frame_id if image.frame_id is not None else n + 1
            place_file(image.path, out / "images" / split / image.export_name)
            images.append({"id": image_id, "file_name": image.export_name,
                           "width": image.width, "height": image.height})
            for item in image.shapes:
                ann_id = item.annotation_id
                if ann_id is None:
                    ann_id, next_ann = next_ann, next_ann + 1
                anns.append(_annotation(item, ann_id, image_id, cat_id[item.label]))
        total += len(anns)
        doc = {"info": {"description": "exported by LabelLoop"}, "licenses": [],
               "images": images, "annotations": anns, "categories": categories}
        write_text(out / "annotations" / f"instances_{split}.json", json.dumps(doc))
    return {"images": len(labeled.images), "annotations": total}


def _annotation(item: LabeledShape, ann_id: int, image_id: int, category: int) -> dict:
    if isinstance(item.shape, Polygon):
        box = item.shape.bbox()
        segmentation = [[v for point in item.shape.points for v in point]]
        area = item.shape.area
    else:
        box, segmentation, area = item.shape, [], item.shape.area
    return {"id": ann_id, "image_id": image_id, "category_id": category,
            "bbox": box_to_coco(box), "area": area, "iscrowd": 0,
            "segmentation": segmentation}
