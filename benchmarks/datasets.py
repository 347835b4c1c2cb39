"""Dataset build speed vs ultralytics' own COCO -> YOLO label conversion.

A synthetic project of 10,000 tiny frames and 50,000 boxes (5 classes, one rare) is made
fast (rows inserted through the repositories in one transaction each). Then, in the same
process:
  ours        build_dataset(task=detect): read the store, split (grouped, stratified),
              hard-link images, write labels, hash the snapshot, reports, record it
  reference   ultralytics.data.converter.convert_coco on the same annotations exported as
              COCO JSON: reads the JSON and writes YOLO label files (no images, no split)
Target: ours <= 1.0x the reference and <= 5 s; 0.5x is where we want to be.

    .venv/bin/python benchmarks/datasets.py [--frames 10000] [--boxes 50000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "False")   # no progress bar in the timed reference
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from src.data.datasets import DatasetSpec, build_dataset  # noqa: E402
from src.data.formats import export_annotations  # noqa: E402
from src.db import annotations as annotations_repo  # noqa: E402
from src.db import classes as classes_repo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.connection import transaction  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.db.records import Annotation, Frame, MediaSource  # noqa: E402

W, H = 64, 48
CLASSES = ("car", "person", "bike", "bus", "dog")
WEIGHTS = (0.4, 0.3, 0.15, 0.1, 0.05)   # 'dog' is the rare class


def make_project(root: Path, n_frames: int, n_boxes: int, seed: int = 0) -> Project:
    """n_frames tiny PNG frames in 10 'videos', n_boxes random boxes spread over them."""
    rng = random.Random(seed)
    project = Project.open(root)
    per_source = n_frames // 10
    image = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    with transaction(project.conn):
        class_ids = [classes_repo.add_class(project.conn, name).id for name in CLASSES]
        frames = []
        for s in range(10):
            source = sources_repo.add_source(project.conn, MediaSource(
                kind="video", path=str(root / f"video{s}.mp4"), name=f"video{s}.mp4",
                fps=30.0, frame_count=per_source, width=W, height=H))
            folder = project.frames_dir / str(source.id)
            folder.mkdir(parents=True)
            for i in range(per_source):
                path = folder / f"{i:06d}.png"
                image[0, :3, 0] = (s, i // 256, i % 256)   # every frame a different file
                path.write_bytes(cv2.imencode(".png", image)[1].tobytes())
                frames.append(frames_repo.add_frame(project.conn, Frame(
                    source.id, i, project.relpath(path), W, H)))
        anns = []
        for _ in range(n_boxes):
            frame = rng.choice(frames)
            x, y = rng.uniform(0, W - 10), rng.uniform(0, H - 10)
            w, h = rng.uniform(4, W - x), rng.uniform(4, H - y)
            cls = rng.choices(class_ids, WEIGHTS)[0]
            anns.append(Annotation(frame.id, cls, "box", [x, y, x + w, y + h]))
        annotations_repo.add_annotations(project.conn, anns)
    return project


def _user_cpu() -> float:
    """User-mode CPU seconds of this process: our Python work, without the kernel's file
    system time (which swings with the shared disk)."""
    return psutil.Process().cpu_times().user


def time_ours(project: Project, name: str) -> tuple[float, float]:
    """(wall seconds, user CPU seconds)."""
    os.sync()   # each timed run starts with no write-back left over from the one before
    start, cpu = time.perf_counter(), _user_cpu()
    build_dataset(project, DatasetSpec(name=name, task="detect"))
    return time.perf_counter() - start, _user_cpu() - cpu


def time_reference(coco_dir: Path, work: Path) -> tuple[float, float]:
    from ultralytics.data.converter import convert_coco
    out = work / f"converted-{time.monotonic_ns()}"
    os.sync()
    start, cpu = time.perf_counter(), _user_cpu()
    convert_coco(labels_dir=str(coco_dir), save_dir=str(out), use_segments=False,
                 cls91to80=False)
    # The output stays until the end: deleting 10k files (on a disk mounted with online
    # discard) would slow whatever runs next, which is our build.
    return time.perf_counter() - start, _user_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--boxes", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; best is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-datasets-"))
    try:
        start = time.perf_counter()
        project = make_project(work / "project", args.frames, args.boxes)
        print(f"synthetic project: {args.frames} frames, {args.boxes} boxes, "
              f"made in {time.perf_counter() - start:.1f} s")
        export_annotations(project, work / "coco", "coco")
        coco_dir = work / "coco" / "annotations"
        # Alternate the two so a busy machine slows both alike.
        ours_runs, reference_runs = [], []
        for i in range(args.repeat):
            ours_runs.append(time_ours(project, f"bench{i}"))
            reference_runs.append(time_reference(coco_dir, work))
        project.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    walls = ([w for w, _ in ours_runs], [w for w, _ in reference_runs])
    cpus = ([c for _, c in ours_runs], [c for _, c in reference_runs])
    runs = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    print(f"ours: build_dataset(detect)          wall best {min(walls[0]):5.2f} s "
          f"(runs {runs(walls[0])}); user CPU best {min(cpus[0]):5.2f} s")
    print(f"reference: ultralytics convert_coco  wall best {min(walls[1]):5.2f} s "
          f"(runs {runs(walls[1])}); user CPU best {min(cpus[1]):5.2f} s")
    paired = statistics.median(o / r for o, r in zip(*walls))
    print(f"ratio ours/reference: wall best/best {min(walls[0]) / min(walls[1]):.2f}x, "
          f"wall median of back-to-back pairs {paired:.2f}x, "
          f"user CPU best/best {min(cpus[0]) / min(cpus[1]):.2f}x "
          f"(target <= 1.0x and <= 5 s; goal 0.5x)")
    print("note: wall times swing with the kernel's file-creation time on a shared machine;"
          " user CPU leaves it out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
