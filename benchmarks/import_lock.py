"""How long other writers wait while an annotation import runs.

A YOLO dataset of N images is imported into a project while a second process (the GUI
saving edits, in effect) adds one annotation every 10 ms with SQLite's default 30 s busy
timeout. Printed: the import's wall time, how many writes the other process made during
it, their slowest and median latency, and how many failed. Before issue 9 the import held
the write lock while decoding every image, so the slowest write waited ~ the whole import.

    .venv/bin/python benchmarks/import_lock.py [--images 400] [--size 320x240]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRITER = """
import json, sys, time
from pathlib import Path
from src.db import annotations
from src.db.project import Project
from src.db.records import Annotation
project = Project.open(Path(sys.argv[1]), create=False)
frame_id, class_id, stop = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
latencies, failures = [], 0
while not stop.exists():
    start = time.perf_counter()
    try:
        annotations.add_annotations(project.conn, [Annotation(frame_id, class_id, "box", [1, 1, 5, 5])])
        latencies.append(time.perf_counter() - start)
    except Exception as exc:
        failures += 1
    Path(sys.argv[5]).touch()
    time.sleep(0.01)
print(json.dumps({"latencies": latencies, "failures": failures}))
"""


def make_dataset(root: Path, n: int, width: int, height: int) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"),
                    rng.integers(0, 255, (height, width, 3), np.uint8))
        (root / "labels" / f"{i:05d}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images", "names": ["car"]}))
    return root / "data.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    from src.data.capture import import_media
    from src.data.formats import import_annotations
    from src.db import classes as classes_repo
    from src.db.project import Project
    work = Path(tempfile.mkdtemp(prefix="import-lock-"))
    data_yaml = make_dataset(work / "ds", args.images, width, height)
    (work / "edits").mkdir()
    cv2.imwrite(str(work / "edits" / "0.png"), np.zeros((48, 64, 3), np.uint8))
    with Project.open(work / "project") as project:
        _, (frame,) = import_media(project, work / "edits")
        manual = classes_repo.add_class(project.conn, "manual")
        stop, ready = work / "stop", work / "ready"
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(project.root),
                                   str(frame.id), str(manual.id), str(stop), str(ready)],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True)
        while not ready.exists():
            time.sleep(0.05)
        start = time.perf_counter()
        summary = import_annotations(project, data_yaml, "yolo")
        seconds = time.perf_counter() - start
        stop.touch()
        result = json.loads(writer.communicate()[0])
    lat = result["latencies"]
    print(f"import of {summary['images']} images ({args.size}): {seconds:.2f} s")
    print(f"other process: {len(lat)} writes, {result['failures']} failed; write latency "
          f"median {statistics.median(lat) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms "
          f"({max(lat) / seconds:.1%} of the import's time)")


if __name__ == "__main__":
    main()
