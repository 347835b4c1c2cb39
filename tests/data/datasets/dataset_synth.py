"""Small synthetic projects for the dataset and format tests: real PNG frames, real rows."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import Annotation, Frame, MediaSource

W, H = 96, 64


def add_source(project: Project, name: str, frames: list[list[tuple]], *,
               size: tuple[int, int] = (W, H)) -> list[Frame]:
    """A fake video source whose frame i holds `frames[i]`: (class, kind, geometry[, status]).

    Shapes are painted solid in their class colour on a dark background, so crops show them.
    """
    w, h = size
    with transaction(project.conn):
        source = sources_repo.add_source(project.conn, MediaSource(
            kind="video", path=str(project.root / f"{name}.mp4"), name=f"{name}.mp4",
            fps=10.0, frame_count=len(frames), width=w, height=h))
        folder = project.frames_dir / str(source.id)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for index, shapes in enumerate(frames):
            image = np.full((h, w, 3), (30 + index % 50, 20, 10), np.uint8)
            anns = []
            for item in shapes:
                cls_name, kind, geometry = item[:3]
                status = item[3] if len(item) > 3 else "accepted"
                cls = classes_repo.ensure_class(project.conn, cls_name,
                                                classes_repo.kind_of_annotation(kind))
                _paint(image, kind, geometry, cls.color)
                anns.append((cls.id, kind, geometry, status))
            path = folder / f"{index:06d}.png"
            cv2.imwrite(str(path), image)
            frame = frames_repo.add_frame(project.conn, Frame(
                source_id=source.id, frame_index=index, image_path=project.relpath(path),
                width=w, height=h))
            annotations_repo.add_annotations(project.conn, [
                Annotation(frame.id, cid, kind, geometry, status=status)
                for cid, kind, geometry, status in anns])
            out.append(frame)
    return out


def _paint(image, kind: str, geometry, color: str) -> None:
    bgr = tuple(int(color[i:i + 2], 16) for i in (5, 3, 1))
    if kind == "box":
        x1, y1, x2, y2 = (int(round(v)) for v in geometry)
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), bgr, -1)
    elif kind == "polygon":
        cv2.fillPoly(image, [np.round(np.array(geometry)).astype(np.int32)], bgr)


def box(cls: str, x: float, y: float, w: float = 16, h: float = 12, status="accepted"):
    return (cls, "box", [x, y, x + w, y + h], status)


def poly(cls: str, x: float, y: float, s: float = 14, status="accepted"):
    return (cls, "polygon", [[x, y], [x + s, y], [x + s / 2, y + s]], status)


def tag(cls: str):
    return (cls, "tag", None)


def mixed_frames(n: int, *, rare_every: int = 7, offset: int = 0) -> list[list[tuple]]:
    """n frames: a 'car' box in each, a 'person' polygon in every other, a rare 'bike' box."""
    frames = []
    for i in range(n):
        x = 4 + (i * 3 + offset) % 50
        shapes = [box("car", x, 6)]
        if i % 2 == 0:
            shapes.append(poly("person", 60 - x % 40, 30))
        if i % rare_every == 3:
            shapes.append(box("bike", 70, 40, 18, 18))
        frames.append(shapes)
    return frames


def read_manifest(path: Path) -> dict:
    import json
    return json.loads((path / "manifest.json").read_text())
