"""Ultralytics YOLO datasets: data.yaml + images/<split>/ + labels/<split>/*.txt.

A label line is `class cx cy w h` (a box) or `class x1 y1 x2 y2 ...` (a polygon, >= 3
points), all normalized to 0..1 of the image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from src.data import limits
from src.data.formats.model import (SPLIT_NAMES, LabeledImage, LabeledSet, LabeledShape,
                                    class_name, number)
from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file, resolve_image_ref
from src.data.geometry import Box, Polygon, box_to_yolo, polygon_to_yolo
from src.data.video import IMAGE_EXTENSIONS, list_image_files
from src.errors import DatasetError

# Ultralytics itself tolerates slightly out-of-range values; beyond this a file is wrong.
_SLACK = 0.05
# A data.yaml is a few KB (names of 1000 classes: ~20 KB); nesting of [ and { is 2 deep.
_MAX_YAML_CHARS = 1_000_000
_MAX_YAML_BRACKETS = 50


def read(path: Path, *, root: Path | None = None, images_dir: Path | None = None) -> LabeledSet:
    """Read a YOLO dataset from its data.yaml (or the folder holding it); split paths are
    relative to `root`, else to data.yaml's `path`, else to data.yaml's folder. Images must
    lie inside `root` (when given) or data.yaml's folder, or in `images_dir`."""
    yaml_path = _find_yaml(path)
    data = _load_yaml(yaml_path)
    classes = _names(data, yaml_path)
    scope = _Scope(root or yaml_path.parent, images_dir, yaml_path)
    root = root or _dataset_root(data, yaml_path)
    images: list[LabeledImage] = []
    seen: set[Path] = set()
    for split in SPLIT_NAMES:
        for listed, image in _split_images(data.get(split), root, scope, split):
            if image in seen:
                continue
            seen.add(image)
            shapes = read_label_file(_label_path(listed), classes)
            images.append(LabeledImage(image, shapes, split=split))
    if not images:
        raise DatasetError("the dataset lists no images", path=yaml_path, field="train",
                           hint="point train/val/test at folders of images")
    splits = list(dict.fromkeys(image.split for image in images))
    return LabeledSet(images, classes, subsets=splits if len(splits) > 1 else [])


def _dataset_root(data: dict, yaml_path: Path) -> Path:
    """data.yaml's `path` (relative to its folder), else its folder."""
    root = yaml_path.parent / str(data.get("path") or ".")
    if not _is_dir(root, yaml_path, "path"):   # a dataset moved since data.yaml was written
        return yaml_path.parent
    return root.resolve()


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


@dataclass
class _Scope:
    """Where a dataset's images may be: inside `bound` or `images_dir` (see resolve_image_ref)."""
    bound: Path
    images_dir: Path | None
    yaml_path: Path

    def image(self, candidate: Path, where: Path, field: str) -> Path:
        return resolve_image_ref(self.bound, str(candidate), self.images_dir, path=where,
                                 field=field)


def _load_yaml(path: Path) -> dict:
    try:
        data = _safe_load_bounded(path.read_text(encoding="utf-8"), path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise DatasetError(f"{where}not valid YAML", path=path) from exc
    except RecursionError:
        raise DatasetError("YAML nested too deeply to be a data.yaml", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc
    if not isinstance(data, dict):
        raise DatasetError("expected a mapping with names, train and val", path=path)
    return data


def _safe_load_bounded(text: str, path: Path):
    """yaml.safe_load, refusing a document whose aliases expand past the YAML node limit
    (a few hundred bytes of nested aliases can stand for a billion nodes), or whose size or
    [{ nesting would cost PyYAML's scanner quadratic time."""
    if len(text) > _MAX_YAML_CHARS:
        raise DatasetError(f"{len(text):,} characters is too large for a data.yaml (at most "
                           f"{_MAX_YAML_CHARS:,})", path=path)
    depth = deepest = 0
    for char in text:
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    if deepest > _MAX_YAML_BRACKETS:
        raise RecursionError   # reported as "nested too deeply"
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > limits.YAML_NODES.value():
            raise DatasetError(f"aliases expand this YAML too far: "
                               f"{limits.YAML_NODES.exceeded(size)}", path=path,
                               hint="write the values out instead of using &anchors/*aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes of `node` with every alias expanded; linear in the nodes actually written."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


def _names(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        keys = [_class_index(k) for k in names]
        if None in keys:
            raise DatasetError("names keys must be class indices 0..n-1", path=path,
                               field="names")
        keys.sort()
        if keys != list(range(len(keys))):
            raise DatasetError("names keys must be 0..n-1 without gaps", path=path,
                               field="names")
        names = [names.get(k, names.get(str(k))) for k in keys]
    if not isinstance(names, list) or not names:
        raise DatasetError("names must be a non-empty list or {index: name} mapping",
                           path=path, field="names")
    names = [class_name(n if isinstance(n, str) else _scalar_text(n, path), f"names[{i}]", path)
             for i, n in enumerate(names)]
    if len({n.casefold() for n in names}) != len(names):
        raise DatasetError("class names must be distinct (ignoring case)", path=path,
                           field="names")
    return names


def _class_index(key) -> int | None:
    text = str(key) if isinstance(key, (int, str)) and not isinstance(key, bool) else ""
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _scalar_text(value, path: Path) -> str:
    """A number used as a class name (`names: [1, 2]`) as text; anything else is refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e15:
        return str(value)
    raise DatasetError(f"expected class names as text, got a {type(value).__name__}",
                       path=path, field="names")


def _is_dir(path: Path, where: Path, field: str) -> bool:
    """Path.is_dir(), with a too long or NUL-holding path named as a DatasetError."""
    try:
        return path.is_dir()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"unusable path {str(path)[:200]!r} ({exc})", path=where,
                           field=field) from None


def _split_images(value, root: Path, scope: _Scope, split: str) -> list[tuple[Path, Path]]:
    """(path as listed, resolved path) of the split's images."""
    if not value:
        return []
    out = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            raise DatasetError(f"expected a folder or list file, got a {type(item).__name__}",
                               path=scope.yaml_path, field=split)
        target = Path(item)
        target = target if target.is_absolute() else root / target
        if _is_dir(target, scope.yaml_path, split):
            out += [(f, scope.image(f, scope.yaml_path, split)) for f in _images_in(target)]
        elif target.suffix == ".txt" and target.is_file():
            out += _listed_images(target, root, scope)
        else:
            raise DatasetError(f"{split} images not found at {target}", path=scope.yaml_path,
                               field=split, hint="fix the path (relative to the dataset root)")
    return out


def _images_in(folder: Path) -> list[Path]:
    """The folder's images; an empty split folder is allowed (e.g. no test images)."""
    if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        return []
    return list_image_files(folder)


def _listed_images(list_file: Path, root: Path, scope: _Scope) -> list[tuple[Path, Path]]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the image list ({exc})", path=list_file) from exc
    out = []
    for number_, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        image = Path(line)
        image = image if image.is_absolute() else root / image
        out.append((image, scope.image(image, list_file, f"line {number_}")))
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
    index = _class_index(parts[0])
    if index is None or index >= len(classes):
        raise DatasetError(f"line {n}: class {parts[0][:20]!r} is not an index "
                           f"0..{len(classes) - 1}", path=path, hint="check the names in data.yaml")
    values = [number(v, "coordinate", path, line=n) for v in parts[1:]]
    if any(not -_SLACK <= v <= 1 + _SLACK for v in values):
        raise DatasetError(f"line {n}: coordinates must be normalized to 0..1", path=path,
                           hint="divide pixel coordinates by the image width/height")
    values = [min(max(v, 0.0), 1.0) for v in values]
    label = classes[index]
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


def write(labeled: LabeledSet, out: Path) -> dict:
    """Write images/<split>/, labels/<split>/ and data.yaml under `out` (data.yaml with no
    `path`: see data_yaml_text).

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
    data = {"train": first,
            "val": "images/val" if "val" in splits else first,
            "names": dict(enumerate(labeled.classes))}
    if "test" in splits:
        data["test"] = "images/test"
    write_text(out / "data.yaml", data_yaml_text(data))
    return {"images": len(labeled.images), "annotations": count,
            "task": "segment" if segment else "detect", "polygons written as boxes": as_boxes}


def data_yaml_text(data: dict) -> str:
    """A data.yaml without `path`, so the folder can be copied or moved and still train:
    ultralytics then resolves train/val/test against data.yaml's own folder, whatever the
    working directory (a relative `path`, even '.', it resolves against the working
    directory or its datasets dir; an absolute one breaks on another machine)."""
    if "path" in data:
        raise ValueError("data.yaml is written without 'path'")
    return ("# Dataset root: this file's folder (no 'path' key, so the folder can be moved)\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _split_order(split: str) -> int:
    return SPLIT_NAMES.index(split) if split in SPLIT_NAMES else len(SPLIT_NAMES)

