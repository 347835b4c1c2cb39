"""Named albumentations pipelines that carry boxes and polygons along, and a GUI preview.

Pipelines live in configs/augment.yaml as lists of `TransformName: {arguments}`. Boxes go
through as pascal_voc bboxes (clipped to the image, dropped when less than
MIN_VISIBILITY of them is left), polygon vertices as keypoints (then clipped to the image).
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import yaml

from src.data.geometry import Box, Polygon, clip_polygon, shape_of
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.errors import ConfigError

CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "augment.yaml"
TRAINING_SECTION = "training"
MIN_VISIBILITY = 0.25
MIN_POLYGON_AREA = 1.0   # px²: a polygon squeezed below this by the transform is dropped


@dataclass
class LabelledShape:
    """A shape with its class, in pixels of the image it belongs to."""
    label: str
    shape: Box | Polygon


def load_pipelines(path: str | Path = CONFIG_PATH) -> dict[str, list[dict]]:
    """Pipeline name -> list of {TransformName: arguments}, as written in the config."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read augmentation config ({exc.strerror})", path=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"augmentation config is not valid YAML ({exc})", path=path) from exc
    if isinstance(data, dict):
        data.pop(TRAINING_SECTION, None)   # the trainers' settings (src/training/augment_settings.py)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ConfigError("expected pipeline names mapping to lists of transforms", path=path,
                          hint="see configs/augment.yaml for the layout")
    return data


def build_pipeline(name: str, *, seed: int = 0, path: str | Path = CONFIG_PATH) -> A.Compose:
    """The albumentations Compose for pipeline `name`, seeded for reproducible output."""
    pipelines = load_pipelines(path)
    if name not in pipelines:
        raise ConfigError(f"no augmentation pipeline '{name}'", path=path, field="augment",
                          hint=f"known pipelines: {', '.join(pipelines)}")
    transforms = [_transform(entry, name, path) for entry in pipelines[name]]
    return A.Compose(
        transforms, seed=seed,
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["box_labels"],
                                 min_visibility=MIN_VISIBILITY, clip=True),
        keypoint_params=A.KeypointParams(format="xy", label_fields=["point_owner"],
                                         remove_invisible=False))


def _transform(entry, pipeline: str, path) -> A.BasicTransform:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"pipeline '{pipeline}': each step must be one "
                          f"'TransformName: {{arguments}}', got {entry!r}", path=path)
    (cls_name, kwargs), = entry.items()
    cls = getattr(A, str(cls_name), None)
    if not (isinstance(cls, type) and issubclass(cls, A.BasicTransform)):
        raise ConfigError(f"pipeline '{pipeline}': unknown transform '{cls_name}'", path=path,
                          hint="use a class name from albumentations, e.g. HorizontalFlip")
    try:
        with warnings.catch_warnings():
            # albumentations only warns about unknown arguments: a typo would go unnoticed.
            warnings.simplefilter("error", UserWarning)
            return cls(**(kwargs or {}))
    except (TypeError, ValueError, UserWarning) as exc:
        raise ConfigError(f"pipeline '{pipeline}': bad arguments for {cls_name} ({exc})",
                          path=path) from exc


def augment(pipeline: A.Compose, image: np.ndarray, shapes: list[LabelledShape],
            mask: np.ndarray | None = None):
    """Apply `pipeline` to an image and its shapes; returns (image, shapes[, mask]).

    Every returned box lies inside the image; shapes pushed out of it are dropped."""
    h, w = image.shape[:2]
    boxes = [s for s in shapes if isinstance(s.shape, Box)]
    polys = [s for s in shapes if isinstance(s.shape, Polygon)]
    bboxes = np.array([b.shape.to_list() for b in boxes], dtype=np.float64).reshape(-1, 4)
    points = [p for poly in polys for p in poly.shape.points]
    owners = [i for i, poly in enumerate(polys) for _ in poly.shape.points]
    args = dict(image=image, bboxes=bboxes, box_labels=list(range(len(boxes))),
                keypoints=np.array(points, dtype=np.float64).reshape(-1, 2),
                point_owner=owners)
    if mask is not None:
        args["mask"] = mask
    out = pipeline(**args)
    oh, ow = out["image"].shape[:2]
    result = [LabelledShape(boxes[int(i)].label, _inside_box(b, ow, oh))
              for b, i in zip(out["bboxes"], out["box_labels"])]
    result = [s for s in result if s.shape.width > 0 and s.shape.height > 0]
    result += _polygons_after(polys, out["keypoints"], out["point_owner"], ow, oh)
    if mask is not None:
        return out["image"], result, out["mask"]
    return out["image"], result


def _inside_box(values, w: int, h: int) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values[:4])
    return Box(min(max(x1, 0.0), w), min(max(y1, 0.0), h),
               min(max(x2, 0.0), w), min(max(y2, 0.0), h))


def _polygons_after(polys, keypoints, owners, w: int, h: int) -> list[LabelledShape]:
    grouped: dict[int, list[tuple[float, float]]] = {}
    for (x, y), owner in zip(np.asarray(keypoints).reshape(-1, 2), owners):
        grouped.setdefault(int(owner), []).append((float(x), float(y)))
    result = []
    for index, points in sorted(grouped.items()):
        clipped = clip_polygon(Polygon(tuple(points)), w, h)
        original = polys[index].shape.area
        if len(clipped.points) >= 3 and clipped.area >= max(MIN_POLYGON_AREA,
                                                            MIN_VISIBILITY * original * 0.5):
            result.append(LabelledShape(polys[index].label, clipped))
    return result


def draw_shapes(image: np.ndarray, shapes: list[LabelledShape],
                colors: dict[str, str] | None = None) -> np.ndarray:
    """A copy of a BGR image with boxes, polygons and class names drawn on it."""
    canvas = image.copy()
    for item in shapes:
        color = _bgr((colors or {}).get(item.label, "#e6194b"))
        if isinstance(item.shape, Box):
            b = item.shape
            p1, p2 = (int(round(b.x1)), int(round(b.y1))), (int(round(b.x2)), int(round(b.y2)))
            cv2.rectangle(canvas, p1, p2, color, 1)
            corner = p1
        else:
            pts = np.round(np.array(item.shape.points)).astype(np.int32)
            cv2.polylines(canvas, [pts], True, color, 1)
            corner = tuple(int(v) for v in pts.min(axis=0))
        cv2.putText(canvas, item.label, (corner[0], max(corner[1] - 2, 8)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.3, color, 1, cv2.LINE_AA)
    return canvas


def _bgr(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def preview(project, n: int = 8, *, pipeline: str = "standard", seed: int = 0,
            path: str | Path = CONFIG_PATH) -> list[np.ndarray]:
    """Up to `n` augmented frames of `project` with their accepted shapes drawn (BGR)."""
    frames = _annotated_frames(project)
    rng = random.Random(seed)
    chosen = rng.sample(frames, min(n, len(frames)))
    compose = build_pipeline(pipeline, seed=seed, path=path)
    out = []
    for image_path, shapes, colors in chosen:
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        augmented, moved = augment(compose, image, shapes)
        out.append(draw_shapes(augmented, moved, colors))
    return out


def _annotated_frames(project) -> list[tuple[Path, list[LabelledShape], dict[str, str]]]:
    """(image, accepted shapes, class colours) of every frame with a box or polygon."""
    classes = {c.id: c for c in classes_repo.list_classes(project.conn)}
    colors = {c.name: c.color for c in classes.values()}
    by_frame: dict[int, list[LabelledShape]] = {}
    for ann in annotations_repo.list_annotations(project.conn, status="accepted"):
        shape = shape_of(ann)
        if shape is not None:
            by_frame.setdefault(ann.frame_id, []).append(
                LabelledShape(classes[ann.class_id].name, shape))
    out = []
    for frame in frames_repo.list_frames(project.conn):
        if frame.id in by_frame:
            out.append((project.abspath(frame.image_path), by_frame[frame.id], colors))
    return out


@dataclass
class PreviewSample:
    """A frame to preview augmentation on: its image, accepted shapes and class colours."""
    frame_id: int
    image_path: Path
    shapes: list[LabelledShape]
    colors: dict[str, str]


def preview_sample(project, frame_ids=None, *, prefer: int | None = None,
                   skip: set[int] = frozenset()) -> PreviewSample | None:
    """The frame to preview on: `prefer` when it has shapes, else the first annotated frame
    among `frame_ids` (None: all) not in `skip`; None when no frame has a box or polygon."""
    allowed = None if frame_ids is None else set(frame_ids)
    found = {}
    for frame_id, image_path, shapes, colors in _annotated_frames_by_id(project):
        if frame_id not in skip and (allowed is None or frame_id in allowed
                                     or frame_id == prefer):
            found[frame_id] = PreviewSample(frame_id, image_path, shapes, colors)
    if prefer in found:
        return found[prefer]
    return next((s for i, s in found.items() if allowed is None or i in allowed), None)


def _annotated_frames_by_id(project):
    ids = {project.abspath(f.image_path): f.id for f in frames_repo.list_frames(project.conn)}
    for image_path, shapes, colors in _annotated_frames(project):
        yield ids[image_path], image_path, shapes, colors


def variants(sample: PreviewSample, n: int, *, pipeline: str = "standard", seed: int = 0,
             path: str | Path = CONFIG_PATH) -> list[np.ndarray]:
    """The sample's image through `pipeline` n times (one seeded pipeline drawing anew each
    time, as a build's oversampling does), shapes drawn (BGR)."""
    image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError("cannot read the preview frame's image", path=sample.image_path)
    compose = build_pipeline(pipeline, seed=seed, path=path)
    out = []
    for _ in range(n):
        augmented, moved = augment(compose, image, sample.shapes)
        out.append(draw_shapes(augmented, moved, sample.colors))
    return out
