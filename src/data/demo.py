"""The demo project: a deterministic synthetic video with ground truth.

Moving, occluding shapes of three classes — 'square' (stored as boxes), 'circle' and
'triangle' (stored as polygons); 'triangle' is rare (~5% of objects) — on a background
whose lighting changes half way ('day' then 'night', stored as frame tags). It is the
embedded default of `make run`, the tests and the benchmarks, so it is small and builds
in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import Annotation

WIDTH, HEIGHT, FPS = 320, 240, 15
FRAMES = 300
CAPTURE_EVERY = 2
VIDEO_NAME = "demo.mp4"
CLASSES = {"square": "#3cb44b", "circle": "#4363d8", "triangle": "#e6194b",
           "day": "#ffe119", "night": "#000075"}
TAGS = ("day", "night")       # frame tags (whole-frame labels); the others are object classes
MIN_VISIBLE = 0.3  # an object less visible than this (occluded) gets no annotation
# Frames (half-open ranges) in which the rare triangle is on screen, spread over both halves.
TRIANGLE_WINDOWS = ((16, 36), (92, 106), (170, 188), (240, 254))


@dataclass
class _Mover:
    cls: str
    size: float
    pos: np.ndarray
    vel: np.ndarray
    color_day: tuple[int, int, int]
    phase: float

    def outline(self, t: int) -> np.ndarray:
        """The shape's outline at frame t, in pixels (float, N x 2)."""
        cx, cy = self.pos
        s = self.size
        if self.cls == "square":
            return np.array([[cx - s, cy - s], [cx + s, cy - s], [cx + s, cy + s], [cx - s, cy + s]])
        if self.cls == "circle":
            a = np.linspace(0, 2 * math.pi, 20, endpoint=False)
            return np.stack([cx + s * np.cos(a), cy + s * np.sin(a)], axis=1)
        a = self.phase + t * 0.05 + np.array([0, 2 * math.pi / 3, 4 * math.pi / 3])
        return np.stack([cx + s * np.cos(a), cy + s * np.sin(a)], axis=1)

    def step(self) -> None:
        self.pos += self.vel
        for axis, limit in ((0, WIDTH), (1, HEIGHT)):
            margin = self.size + 2
            if not margin <= self.pos[axis] <= limit - margin:
                self.vel[axis] *= -1
                self.pos[axis] = min(max(self.pos[axis], margin), limit - margin)


def _movers(rng: np.random.Generator) -> list[_Mover]:
    specs = [("square", 18, (60, 200, 60)), ("square", 13, (40, 160, 40)),
             ("circle", 16, (200, 80, 40)), ("circle", 11, (230, 120, 60)),
             ("triangle", 17, (40, 40, 220))]
    movers = []
    for cls, size, color in specs:
        pos = rng.uniform([size + 2, size + 2], [WIDTH - size - 2, HEIGHT - size - 2])
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(1.5, 3.0)
        movers.append(_Mover(cls, float(size), pos, np.array([math.cos(angle), math.sin(angle)]) * speed,
                             color, float(rng.uniform(0, 2 * math.pi))))
    return movers


def _background(rng: np.random.Generator, night: bool) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 6)
    noise = noise / (np.abs(noise).max() + 1e-6)
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    if night:
        base = np.stack([70 + 25 * y + 0 * noise, 40 + 20 * y + 0 * noise, 30 + 10 * y + 0 * noise], -1)
        base += 18 * noise[..., None]
    else:
        base = np.stack([215 - 40 * y + 0 * noise, 205 - 30 * y + 0 * noise, 190 - 20 * y + 0 * noise], -1)
        base += 25 * noise[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def _visible(outline: np.ndarray, t: int, cls: str) -> bool:
    return cls != "triangle" or any(a <= t < b for a, b in TRIANGLE_WINDOWS)


def render(seed: int = 0):
    """Yield (frame image BGR, [(class, outline, visible fraction)]) for every frame."""
    rng = np.random.default_rng(seed)
    movers = _movers(rng)
    backgrounds = (_background(rng, night=False), _background(rng, night=True))
    for t in range(FRAMES):
        night = t >= FRAMES // 2
        image = backgrounds[int(night)].copy()
        owner = np.full((HEIGHT, WIDTH), -1, np.int16)
        drawn = []
        for k, mover in enumerate(movers):
            outline = mover.outline(t)
            if _visible(outline, t, mover.cls):
                color = tuple(int(c * (0.55 if night else 1.0)) for c in mover.color_day)
                pts = np.round(outline).astype(np.int32)
                cv2.fillPoly(image, [pts], color, lineType=cv2.LINE_AA)
                cv2.fillPoly(owner, [pts], k)
                drawn.append((k, mover.cls, outline))
            mover.step()
        objects = []
        for k, cls, outline in drawn:
            full = np.zeros_like(owner, np.uint8)
            cv2.fillPoly(full, [np.round(outline).astype(np.int32)], 1)
            area = max(int(full.sum()), 1)
            objects.append((cls, outline, float(((owner == k) & (full == 1)).sum()) / area))
        yield image, objects


def write_video(path: Path, seed: int = 0) -> list[list[tuple[str, np.ndarray, float]]]:
    """Write the demo video; return the ground truth objects of every frame."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video at {tmp}")
    truth = []
    try:
        for image, objects in render(seed):
            writer.write(image)
            truth.append(objects)
    finally:
        writer.release()
    tmp.replace(path)
    return truth


def build_demo_project(project_dir: str | Path, seed: int = 0) -> Project:
    """Create (or refresh) the demo project: video, captured frames, classes, ground truth."""
    from src.data.capture import capture_frames, import_media

    project = Project.open(project_dir)
    media_dir = project.root / "media"
    media_dir.mkdir(exist_ok=True)
    video = media_dir / VIDEO_NAME
    truth = write_video(video, seed)
    source, _ = import_media(project, video)
    frames = capture_frames(project, source, range(0, FRAMES, CAPTURE_EVERY))
    _store_truth(project, frames, truth)
    return project


def _store_truth(project: Project, frames, truth) -> None:
    conn = project.conn
    with transaction(conn):
        class_ids = {name: classes_repo.ensure_class(conn, name, "tag" if name in TAGS else "object").id
                     for name in CLASSES}
        for name, color in CLASSES.items():
            classes_repo.update_class(conn, class_ids[name], color=color)
        annotated = {a.frame_id for a in annotations_repo.list_annotations(conn)}
        batch = []
        for frame in frames:
            if frame.id in annotated:
                continue  # re-running the demo does not duplicate its ground truth
            tag = "night" if frame.frame_index >= FRAMES // 2 else "day"
            batch.append(Annotation(frame.id, class_ids[tag], "tag", source="imported"))
            for cls, outline, visible in truth[frame.frame_index]:
                if visible < MIN_VISIBLE:
                    continue
                batch.append(_annotation(frame.id, class_ids[cls], cls, outline))
        annotations_repo.add_annotations(conn, batch)


def _annotation(frame_id: int, class_id: int, cls: str, outline: np.ndarray) -> Annotation:
    if cls == "square":
        x1, y1 = outline.min(axis=0)
        x2, y2 = outline.max(axis=0)
        geometry = [round(float(v), 2) for v in (x1, y1, x2, y2)]
        return Annotation(frame_id, class_id, "box", geometry, source="imported")
    points = [[round(float(x), 2), round(float(y), 2)] for x, y in outline]
    return Annotation(frame_id, class_id, "polygon", points, source="imported")
