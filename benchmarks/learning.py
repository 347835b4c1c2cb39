"""Learning from corrections on the demo video (issue 14): edits per frame with and without
the LoRA adapter, and the time of one full update.

    .venv/bin/python benchmarks/learning.py [--task detect|segment] [--work DIR] [--epochs 30]
                                            [--imgsz 320] [--update-every 5] [--budget-s 20]

1. Base detector: a demo project whose second half ('night': other lighting) is deleted is
   trained on the first half only (`train_demo_detector`), then imported into a full demo
   project as a bundle (so its lineage and sha256s are kept). Cached in --work.
2. `learn simulate` on the second half with and without adaptation (the simulated annotator
   of src/training/learning/simulate.py, the same code the CLI runs): mean edits per frame
   from the 11th corrected frame on; target: adapted <= 0.5 x not adapted.
3. A full update on the first 10 corrected frames of the second half at imgsz 320, timed
   (target <= 20 s on the 2-core machine); the budget is lifted for this one.
Figures are measured on whatever else the machine runs at the time: say how busy it was
(the load average and `uptime` are printed, and each phase's CPU time beside its wall time).

`--task segment`: the base is a YOLO-seg trained the same way on the first half, its dataset
built from the day project with the squares (stored as boxes) turned into 4-point polygons
(a square's box is its exact outline; the dataset builder would otherwise skip boxes); the
full project keeps them as boxes, which the learning loop and the simulated annotator also
take as rectangles. Edits are counted by mask IoU at the frame's size.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

from src.data import demo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.training.models import ModelManager  # noqa: E402

HALF = demo.FRAMES // 2


def base_version(work: Path, epochs: int, imgsz: int, task: str = "detect"
                 ) -> tuple[Path, str]:
    """The full demo project and the ref of a base trained on its first half (cached)."""
    suffix = "" if task == "detect" else f"-{task}"
    full_dir, marker = work / f"demo{suffix}", work / f"base{suffix}.json"
    if marker.exists():
        return full_dir, json.loads(marker.read_text())["ref"]
    os.environ["LABELLOOP_MODELS"] = str(work / "models")
    from src.training.demo_loop import train_demo_detector
    from src.training.models.bundle import export_bundle, import_model

    day = demo.build_demo_project(work / f"day{suffix}")
    source = sources_repo.list_sources(day.conn)[0]
    night = [f.id for f in frames_repo.list_frames(day.conn, source.id) if f.frame_index >= HALF]
    frames_repo.delete_frames(day.conn, night)
    t0, c0 = time.perf_counter(), time.process_time()
    if task == "segment":
        metrics = train_demo_segmenter(day, epochs, imgsz)
    else:
        _run, metrics = train_demo_detector(day, epochs=epochs, imgsz=imgsz)
    print(f"base trained on the first half in {time.perf_counter() - t0:.0f} s "
          f"(CPU {time.process_time() - c0:.0f} s): mAP50-95 "
          f"{metrics.get('metrics/mAP50-95(B)')} (boxes), "
          f"{metrics.get('metrics/mAP50-95(M)')} (masks)", flush=True)
    manager = ModelManager(day)
    trained = manager.active(task)
    bundle = export_bundle(manager, trained, work / f"base{suffix}.zip")
    day.close()
    full = demo.build_demo_project(full_dir)
    version = import_model(ModelManager(full), bundle, trusted=True)
    full.close()
    marker.write_text(json.dumps({"ref": str(version.id), "epochs": epochs, "imgsz": imgsz}))
    return full_dir, str(version.id)


def train_demo_segmenter(day: Project, epochs: int, imgsz: int) -> dict:
    """A YOLO-seg trained as the demo trains its detector, squares as 4-point polygons."""
    from src.data.datasets.builder import build_dataset
    from src.data.datasets.spec import DatasetSpec
    from src.db.project import REPO_ROOT
    from src.training.config import load_config
    from src.training.demo_loop import CLASSES, REPEAT_FACTOR_THRESHOLD, TRAINING
    from src.training.runner import start_training

    boxes_as_polygons(day)
    record, _ = build_dataset(day, DatasetSpec(name="demo-seg", task="segment",
                                               classes=CLASSES))
    cfg = load_config(REPO_ROOT / "configs" / "segmentation.yaml", [
        "name=demo-segmenter", f"epochs={epochs}", f"imgsz={imgsz}", f"patience={epochs}",
        *TRAINING, f"imbalance.repeat_factor_threshold={REPEAT_FACTOR_THRESHOLD}"])
    run = start_training(day, cfg, f"demo-seg:v{record.version}")
    metadata = day.abspath(run.run_dir) / "metadata.json" if run.run_dir else None
    if metadata is None or not metadata.exists():
        return {}
    return dict(json.loads(metadata.read_text()).get("metrics", {}))


def boxes_as_polygons(project: Project) -> int:
    """Every accepted box of the project rewritten as its 4-point polygon."""
    from dataclasses import replace

    from src.db import annotations as annotations_repo

    boxes = [a for a in annotations_repo.iter_annotations(project.conn, status="accepted")
             if a.kind == "box"]
    for ann in boxes:
        x1, y1, x2, y2 = ann.geometry
        annotations_repo.update_annotation(project.conn, replace(
            ann, kind="polygon", geometry=[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]))
    return len(boxes)


def run_simulation(project_dir: Path, ref: str, adapt: bool, args) -> dict:
    from src.training.learning.settings import LearnSettings
    from src.training.learning.simulate import simulate

    settings = LearnSettings(imgsz=args.imgsz, update_every=args.update_every,
                             budget_s=args.budget_s)
    with Project.open(project_dir) as project:
        source = sources_repo.list_sources(project.conn)[0]
        _discard_open(project, source.id, ref)
        t0, c0 = time.perf_counter(), time.process_time()
        result = simulate(project, source.id, ref, settings=settings, adapt=adapt,
                          first=HALF, progress=_dot)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        _discard_open(project, source.id, ref)
    print()
    out = result.to_dict()
    out["wall_s"], out["cpu_s"] = round(wall, 1), round(cpu, 1)
    return out


def time_full_update(project_dir: Path, ref: str, args) -> dict:
    """One update on the first 10 corrected frames of the second half, budget lifted."""
    from src.training.learning.session import LearningSession
    from src.training.learning.settings import LearnSettings
    from src.training.learning.simulate import truth_frames

    settings = LearnSettings(imgsz=args.imgsz, update_every=0, budget_s=600)
    with Project.open(project_dir) as project:
        source = sources_repo.list_sources(project.conn)[0]
        _discard_open(project, source.id, ref)
        session = LearningSession.open(project, source.id, ref, settings=settings)
        for frame, _truth in truth_frames(project, source.id, HALF)[:10]:
            session.frame_corrected(frame.id, {})
        session._base_model()                    # loading the base is not part of it
        t0, c0 = time.perf_counter(), time.process_time()
        session.request_update()
        session.wait()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        status = session.status()
        from src.db import learning as learning_repo
        update = learning_repo.last_update(project.conn, session.record.id)
        session.discard()
    return {"elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 2), "epochs": update.epochs,
            "samples": update.samples,
            "s_per_epoch": round(elapsed / max(1, update.epochs), 2),
            "val_metric": update.val_metric, "base_metric": update.base_metric,
            "reason": status.reason}


def _discard_open(project, source_id: int, ref: str) -> None:
    from src.db import learning as learning_repo
    from src.training.learning.session import LearningSession

    if learning_repo.find_open_session(project.conn, source_id, int(ref)) is not None:
        LearningSession.open(project, source_id, ref).discard()


def _dot(frame) -> None:
    print("a" if frame.adapter else ".", end="", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("detect", "segment"), default="detect",
                        help="the base: a detector (boxes) or a YOLO-seg (polygons)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelloop-bench-learning"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--update-every", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=20.0)
    parser.add_argument("--base-only", action="store_true", help="only build/train the base")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["LABELLOOP_MODELS"] = str(args.work / "models")
    project_dir, ref = base_version(args.work, args.epochs, args.imgsz, args.task)
    print(f"demo project {project_dir}, {args.task} base version {ref}")
    if args.base_only:
        return 0
    load_before = os.getloadavg()
    figures = {"task": args.task, "load_before": load_before, "uptime_before": _uptime()}
    for adapt in (False, True):
        print(f"simulating the second half {'with' if adapt else 'without'} adaptation")
        figures["adapted" if adapt else "base"] = run_simulation(project_dir, ref, adapt, args)
    print("timing a full update on 10 corrected frames")
    figures["full_update"] = time_full_update(project_dir, ref, args)
    figures["load_after"], figures["uptime_after"] = os.getloadavg(), _uptime()
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _uptime() -> str:
    import subprocess
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def report(figures: dict, args) -> None:
    base, adapted, full = figures["base"], figures["adapted"], figures["full_update"]
    iou = "mask IoU of polygons" if args.task == "segment" else "box IoU"
    print(f"\n{args.task} base; edits counted by {iou}")
    print(f"frames simulated: {len(base['frames'])} (second half, frames >= {HALF})")
    print(f"mean edits per frame, all frames: base {base['mean_edits']:.2f}, "
          f"adapted {adapted['mean_edits']:.2f}")
    b, a = base["mean_edits_from_11th"], adapted["mean_edits_from_11th"]
    ratio = a / b if b else float("nan")
    print(f"mean edits per frame from the 11th corrected frame on: base {b:.2f}, adapted "
          f"{a:.2f}, ratio {ratio:.2f} (target <= 0.5)")
    times = [u["elapsed_s"] for u in adapted["updates"]]
    used = sum(u["used"] for u in adapted["updates"])
    if times:
        print(f"updates during the simulation (every {args.update_every} frames, budget "
              f"{args.budget_s:.0f} s): {len(times)}, {used} used, {min(times):.1f}-"
              f"{max(times):.1f} s each")
    print(f"simulations: without {base['wall_s']:.0f} s wall / {base['cpu_s']:.0f} s CPU, with "
          f"{adapted['wall_s']:.0f} s wall / {adapted['cpu_s']:.0f} s CPU")
    print(f"full update on {full['samples']} corrected frames at imgsz {args.imgsz}: "
          f"{full['elapsed_s']:.1f} s (CPU {full['cpu_s']:.1f} s), {full['epochs']} epochs "
          f"({full['s_per_epoch']:.2f} s/epoch) (target <= 20 s); {full['reason']}")
    print(f"load average (1/5/15 min) before {tuple(round(x, 1) for x in figures['load_before'])}"
          f", after {tuple(round(x, 1) for x in figures['load_after'])} on "
          f"{os.cpu_count()} cores")
    print(f"uptime before: {figures['uptime_before']}\nuptime after:  {figures['uptime_after']}")


if __name__ == "__main__":
    sys.exit(main())
