"""Ultralytics YOLO datasets: data.yaml + images/<split>/ + labels/<split>/*.txt.

A label line is `class cx cy w h` (a box) or `class x1 y1 x2 y2 ...` (a polygon, >= 3
points), all normalized to 0..1 of the image.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from src.data.formats.model import SPLIT_NAMES, LabeledImage, LabeledSet, LabeledShape, number
from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file
from src.data.geometry import Box, Polygon, box_to_yolo, polygon_to_yolo
from src.data.video import IMAGE_EXTENSIONS, list_image_files
from src.errors import DatasetError

# Ultralytics itself tolerates slightly out-of-range values; beyond this a file is wrong.
_SLACK = 0.05


def read(path: Path, *, root: Path | None = None) -> LabeledSet:
    """Read a YOLO dataset from its data.yaml (or the folder holding it); split paths are
    relative to `root`, else to data.yaml's `path`, else to data.yaml's folder."""
    yaml_path = _find_yaml(path)
    data = _load_yaml(yaml_path)
    classes = _names(data, yaml_path)
    if root is None:
        root = Path(data.get("path") or yaml_path.parent)
        if not root.is_absolute():
            root = (yaml_path.parent / root).resolve()
        if not root.is_dir():   # a dataset moved since its data.yaml was written
            root = yaml_path.parent
    images: list[LabeledImage] = []
    seen: set[Path] = set()
    for split in SPLIT_NAMES:
        for image in _split_images(data.get(split), root, yaml_path, split):
            if image.resolve() in seen:
                continue
            seen.add(image.resolve())
            shapes = read_label_file(_label_path(image), classes)
            images.append(LabeledImage(image, shapes, split=split))
    if not images:
        raise DatasetError("the dataset lists no images", path=yaml_path, field="train",
                           hint="point train/val/test at folders of images")
    return LabeledSet(images, classes)


def _find_yaml(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise DatasetError("no such file or folder", path=path)
    found = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
    if not found:
        raise DatasetError("no data.yaml in this folder", path=path,
                           hint="a YOLO dataset needs a data.yaml with names and train/val")
    return path / "data.yaml" if (path / "data.yaml").is_file() else found[0]


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise DatasetError(f"{where}not valid YAML", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc
    if not isinstance(data, dict):
        raise DatasetError("expected a mapping with names, train and val", path=path)
    return data


def _names(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DatasetError("names keys must be class indices 0..n-1", path=path,
                               field="names") from None
        if keys != list(range(len(keys))):
            raise DatasetError("names keys must be 0..n-1 without gaps", path=path,
                               field="names")
        names = [names.get(k, names.get(str(k))) for k in keys]
    if not isinstance(names, list) or not names:
        raise DatasetError("names must be a non-empty list or {index: name} mapping",
                           path=path, field="names")
    names = [str(n).strip() for n in names]
    if any(not n for n in names) or len({n.casefold() for n in names}) != len(names):
        raise DatasetError("class names must be non-empty and distinct", path=path,
                           field="names")
    return names


def _split_images(value, root: Path, yaml_path: Path, split: str) -> list[Path]:
    if not value:
        return []
    out = []
    for item in value if isinstance(value, list) else [value]:
        target = Path(str(item))
        target = target if target.is_absolute() else root / target
        if target.is_dir():
            out += _images_in(target)
        elif target.is_file() and target.suffix == ".txt":
            out += _listed_images(target, root)
        else:
            raise DatasetError(f"{split} images not found at {target}", path=yaml_path,
                               field=split, hint="fix the path (relative to the dataset root)")
    return out


def _images_in(folder: Path) -> list[Path]:
    """The folder's images; an empty split folder is allowed (e.g. no test images)."""
    if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        return []
    return list_image_files(folder)


def _listed_images(list_file: Path, root: Path) -> list[Path]:
    out = []
    for number_, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        image = Path(line)
        image = image if image.is_absolute() else (root / image).resolve()
        if not image.is_file() or image.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(f"line {number_}: no image at {image}", path=list_file)
        out.append(image)
    return out


def _label_path(image: Path) -> Path:
    """Ultralytics' rule: the last /images/ of the path becomes /labels/, suffix .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def read_label_file(path: Path, classes: list[str]) -> list[LabeledShape]:
    """The shapes of one label file (none when it does not exist: a background image)."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read label file ({exc})", path=path) from exc
    return [_parse_line(line, n, path, classes)
            for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _parse_line(line: str, n: int, path: Path, classes: list[str]) -> LabeledShape:
    parts = line.split()
    if not parts[0].isdigit() or int(parts[0]) >= len(classes):
        raise DatasetError(f"line {n}: class '{parts[0]}' is not an index 0..{len(classes) - 1}",
                           path=path, hint="check the names in data.yaml")
    values = [number(v, "coordinate", path, line=n) for v in parts[1:]]
    if any(not -_SLACK <= v <= 1 + _SLACK for v in values):
        raise DatasetError(f"line {n}: coordinates must be normalized to 0..1", path=path,
                           hint="divide pixel coordinates by the image width/height")
    values = [min(max(v, 0.0), 1.0) for v in values]
    label = classes[int(parts[0])]
    if len(values) == 4:
        cx, cy, w, h = values
        if w <= 0 or h <= 0:
            raise DatasetError(f"line {n}: box has zero width or height", path=path)
        return LabeledShape(label, Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), True)
    if len(values) >= 6 and len(values) % 2 == 0:
        points = tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))
        return LabeledShape(label, Polygon(points), True)
    raise DatasetError(f"line {n}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...'"
                       f" ({len(parts)} values found)", path=path)


def write(labeled: LabeledSet, out: Path, *, root: Path | None = None) -> dict:
    """Write images/<split>/, labels/<split>/ and data.yaml under `out`; data.yaml's
    `path` is `root` (where `out` will end up), default `out`.

    Segmentation labels when every shape is a polygon, else detection labels with
    polygons as their boxes: ultralytics reads a file with any polygon line as all
    polygons, so mixing the two would corrupt the boxes."""
    index = {name: i for i, name in enumerate(labeled.classes)}
    shapes = [item.shape for image in labeled.images for item in image.shapes]
    segment = bool(shapes) and all(isinstance(s, Polygon) for s in shapes)
    as_boxes = 0
    splits = sorted({img.split for img in labeled.images}, key=_split_order)
    for split in splits:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    count = 0
    for image in labeled.images:
        name = image.export_name
        place_file(image.path, out / "images" / image.split / name)
        lines = []
        for item in image.shapes:
            if segment:
                values = polygon_to_yolo(item.shape, image.width, image.height)
            else:
                as_boxes += isinstance(item.shape, Polygon)
                box = item.shape.bbox() if isinstance(item.shape, Polygon) else item.shape
                values = box_to_yolo(box, image.width, image.height)
            lines.append(f"{index[item.label]} " + " ".join(f"{v:.10f}" for v in values))
            count += 1
        write_text(out / "labels" / image.split / (Path(name).stem + ".txt"),
                   "".join(line + "\n" for line in lines))
    first = f"images/{splits[0] if splits else 'train'}"
    data = {"path": str((root or out).resolve()), "train": first,
            "val": "images/val" if "val" in splits else first,
            "names": dict(enumerate(labeled.classes))}
    if "test" in splits:
        data["test"] = "images/test"
    write_text(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    return {"images": len(labeled.images), "annotations": count,
            "task": "segment" if segment else "detect", "polygons written as boxes": as_boxes}


def _split_order(split: str) -> int:
    return SPLIT_NAMES.index(split) if split in SPLIT_NAMES else len(SPLIT_NAMES)

