"""Pascal VOC: Annotations/<image>.xml with 1-based inclusive pixel boxes, JPEGImages/,
ImageSets/Main/<split>.txt, and labelmap.txt naming the classes (CVAT's and Datumaro's
layout: without it their readers know only the 20 VOC classes). VOC has no polygons:
they are exported as their boxes."""
from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file, resolve_image_ref
from src.data.formats.model import (SPLIT_NAMES, LabeledImage, LabeledSet, LabeledShape,
                                    class_name, image_size, number)
from src.data.geometry import Box, Polygon
from src.errors import DatasetError

LABELMAP = "labelmap.txt"


def read(path: Path, images_dir: Path | None = None) -> LabeledSet:
    """Read every .xml of Annotations/ (or of `path` itself); images are found in
    JPEGImages/, beside the .xml files, in `path` or in `images_dir`."""
    folder = path / "Annotations" if (path / "Annotations").is_dir() else path
    files = sorted(folder.glob("*.xml")) if folder.is_dir() else []
    if not files:
        raise DatasetError("no VOC .xml annotation files here", path=path,
                           hint="pass the folder holding Annotations/ and JPEGImages/")
    images, classes = [], _read_labelmap(path / LABELMAP)
    subset_of = _read_subsets(path / "ImageSets" / "Main", {f.stem for f in files})
    for file in files:
        image = _read_file(file, path, images_dir)
        image.split = subset_of.get(file.stem, image.split)
        for item in image.shapes:
            classes.setdefault(item.label.casefold(), item.label)
        images.append(image)
    if "background" in classes and not any(
            s.label.casefold() == "background" for i in images for s in i.shapes):
        del classes["background"]           # labelmap's segmentation class 0, not an object
    return LabeledSet(images, list(classes.values()),
                      subsets=sorted(set(subset_of.values()), key=_split_order))


def _read_subsets(folder: Path, stems: set[str]) -> dict[str, str]:
    """xml stem -> subset, from ImageSets/Main/<subset>.txt (one image id per line), when
    they put every image in exactly one of two or more subsets; else {} (one subset, as
    CVAT's 'default', is no split worth keeping). VOC's own trainval.txt, the union of
    train and val, and its <class>_<subset>.txt files (two columns) are passed over."""
    lists: dict[str, list[str]] = {}
    for file in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        try:
            lines = file.read_text(encoding="utf-8-sig").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read the subset list ({exc})", path=file) from None
        rows = [line.split() for line in lines if line.strip()]
        if all(len(row) == 1 for row in rows):
            lists[file.stem] = [row[0] for row in rows]
    if {"train", "val", "trainval"} <= lists.keys():
        del lists["trainval"]
    subset_of: dict[str, str] = {}
    for subset, ids in lists.items():
        for stem in ids:
            if subset_of.setdefault(stem, subset) != subset:
                return {}                   # listed twice: no partition to keep
    if len(set(subset_of.values())) < 2 or not stems <= subset_of.keys():
        return {}
    return subset_of


def _split_order(split: str) -> tuple[int, str]:
    return (SPLIT_NAMES.index(split) if split in SPLIT_NAMES else len(SPLIT_NAMES), split)


def _read_labelmap(path: Path) -> dict[str, str]:
    """casefold -> class name, in labelmap.txt's order ({} when there is none). A line is
    `name:r,g,b:parts:actions`; `#` starts a comment line."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"byte {exc.start}: not UTF-8 text", path=path) from None
    classes: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name = class_name(line.split(":", 1)[0], f"line {line_no}", path)
        classes.setdefault(name.casefold(), name)
    return classes


def _read_file(file: Path, root: Path, images_dir: Path | None) -> LabeledImage:
    try:
        tree = ET.parse(file)
    except ET.ParseError as exc:
        line, col = exc.position
        raise DatasetError(f"line {line} column {col}: invalid XML", path=file) from exc
    except RecursionError:
        raise DatasetError("XML nested too deeply to be an annotation file", path=file) from None
    ann = tree.getroot()
    subdirs = tuple(dict.fromkeys(["JPEGImages", str(file.parent.relative_to(root)), "."]))
    image = resolve_image_ref(root, _text(ann, "filename", file), images_dir, path=file,
                              field="filename", subdirs=subdirs)
    width, height = (image_size(number(_text(ann, f"size/{k}", file), f"size/{k}", file),
                                f"size/{k}", file) for k in ("width", "height"))
    shapes = []
    for i, obj in enumerate(ann.findall("object")):
        where = f"object[{i}]"
        label = class_name(_text(obj, "name", file, where), f"{where}/name", file)
        x1, y1, x2, y2 = (number(_text(obj, f"bndbox/{k}", file, where), f"{where}/bndbox/{k}",
                                 file) for k in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DatasetError("xmax/ymax smaller than xmin/ymin", path=file,
                               field=f"{where}/bndbox")
        # 1-based inclusive pixel indices -> continuous corners.
        shapes.append(LabeledShape(label, Box(x1 - 1, y1 - 1, x2, y2)))
    return LabeledImage(image, shapes, width, height)


def _text(node: ET.Element, tag: str, file: Path, where: str = "") -> str:
    found = node.find(tag)
    if found is None or found.text is None or not found.text.strip():
        field = f"{where}/{tag}" if where else tag
        raise DatasetError("missing element", path=file, field=field)
    return found.text


def write(labeled: LabeledSet, out: Path) -> dict:
    """JPEGImages/, Annotations/, ImageSets/Main/<split>.txt and labelmap.txt under `out`."""
    labels = list(dict.fromkeys([*labeled.classes, *(
        item.label for image in labeled.images for item in image.shapes)]))
    for label in labels:
        _check_label(label)
    write_text(out / LABELMAP, _labelmap(labels))
    splits: dict[str, list[str]] = {}
    polygons = 0
    for image in labeled.images:
        name = image.export_name
        place_file(image.path, out / "JPEGImages" / name)
        objects = []
        for item in image.shapes:
            if isinstance(item.shape, Polygon):
                polygons += 1
            box = item.shape.bbox() if isinstance(item.shape, Polygon) else item.shape
            objects.append(_object_xml(item.label, box))
        write_text(out / "Annotations" / (Path(name).stem + ".xml"),
                   _image_xml(name, image.width, image.height, objects))
        splits.setdefault(image.split, []).append(Path(name).stem)
    for split, stems in splits.items():
        write_text(out / "ImageSets" / "Main" / f"{split}.txt", "".join(s + "\n" for s in stems))
    count = sum(len(i.shapes) for i in labeled.images)
    return {"images": len(labeled.images), "annotations": count,
            "polygons written as boxes": polygons}


def _check_label(label: str) -> None:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" or
           unicodedata.category(c) == "Cs" for c in label):
        raise DatasetError(f"class {label!r} holds control characters, which XML cannot"
                           " hold", field="class", hint="rename the class, then export")
    if ":" in label or label.lstrip().startswith("#") or label != label.strip():
        raise DatasetError(f"class {label!r} cannot be written in labelmap.txt (a ':' splits"
                           " its fields, a leading '#' makes a comment, outer spaces are"
                           " stripped)", field="class", hint="rename the class, then export")


def _labelmap(labels: list[str]) -> str:
    """CVAT's labelmap.txt: background first, then each class with a VOC palette colour."""
    names = ["background", *(n for n in labels if n.casefold() != "background")]
    lines = [f"{name}:{','.join(map(str, _voc_color(i)))}::\n" for i, name in enumerate(names)]
    return "# label:color_rgb:parts:actions\n" + "".join(lines)


def _voc_color(index: int) -> tuple[int, int, int]:
    """Entry `index` of the Pascal VOC segmentation palette (0: black, 1: (128, 0, 0)...)."""
    rgb = [0, 0, 0]
    for bit in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return rgb[0], rgb[1], rgb[2]


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _object_xml(label: str, box: Box) -> str:
    return ("  <object>\n"
            f"    <name>{escape(label)}</name>\n    <pose>Unspecified</pose>\n"
            "    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n"
            f"      <xmin>{_fmt(box.x1 + 1)}</xmin>\n      <ymin>{_fmt(box.y1 + 1)}</ymin>\n"
            f"      <xmax>{_fmt(box.x2)}</xmax>\n      <ymax>{_fmt(box.y2)}</ymax>\n"
            "    </bndbox>\n  </object>\n")


def _image_xml(name: str, width: int, height: int, objects: list[str]) -> str:
    return ("<annotation>\n  <folder>JPEGImages</folder>\n"
            f"  <filename>{escape(name)}</filename>\n"
            f"  <size>\n    <width>{width}</width>\n    <height>{height}</height>\n"
            "    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n"
            + "".join(objects) + "</annotation>\n")
