"""Project commands: import, frames capture, info, demo."""
from __future__ import annotations

import argparse
import json

from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.errors import LabelLoopError

IMPORT_FORMATS = ("yolo", "coco", "voc", "labelme")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="register a video file or an image folder, or import "
                                      "annotations (--format)")
    p.add_argument("path", help="video file, image folder, or annotation file/folder with --format")
    p.add_argument("--format", choices=IMPORT_FORMATS, default=None,
                   help="import images with their annotations from this format")
    p.add_argument("--images", metavar="DIR", default=None,
                   help="with --format: the folder holding the images, when they are not"
                        " inside the annotation folder (images elsewhere are refused)")
    p.set_defaults(handler=_import)

    p = sub.add_parser("frames", help="captured frames")
    fsub = p.add_subparsers(dest="frames_command", metavar="ACTION", required=True)
    c = fsub.add_parser("capture", help="capture frames of a source into the project")
    c.add_argument("source", help="source id or file name, as 'import' printed it")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--at", help="comma-separated frame indices, e.g. 0,17,249")
    which.add_argument("--every", type=int, help="capture every K-th frame")
    c.set_defaults(handler=_capture)

    p = sub.add_parser("info", help="what the project holds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_info)

    p = sub.add_parser("demo", help="build the demo project (synthetic video with ground truth),"
                                    " a detection dataset from it, and train a small detector")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-train", action="store_true",
                   help="only build the demo project (seconds), no dataset or training")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the demo training")
    p.add_argument("--imgsz", type=int, default=160, help="image size of the demo training")
    p.set_defaults(handler=_demo)


def _import(args) -> int:
    from src.data.capture import import_media
    if args.images and not args.format:
        raise LabelLoopError("--images goes with --format", field="--images",
                             hint="to import an image folder itself: import DIR")
    with Project.open(args.project) as project:
        if args.format:
            from src.data.formats import import_annotations
            summary = import_annotations(project, args.path, args.format, images=args.images)
            print(json.dumps(summary, indent=2, sort_keys=True))
            return 0
        source, frames = import_media(project, args.path)
        fps = f"{source.fps:g} fps, " if source.fps else ""
        print(f"source {source.id}: {source.name} ({source.kind}, {source.width}x{source.height}, "
              f"{fps}{source.frame_count} frames{f', {len(frames)} captured' if frames else ''})")
    return 0


def _parse_indices(text: str) -> list[int]:
    try:
        indices = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise LabelLoopError(f"frame indices must be integers, got '{text}'", field="--at",
                             hint="write them like --at 0,17,249") from None
    if not indices or min(indices) < 0:
        raise LabelLoopError(f"frame indices must be 0 or more, got '{text}'", field="--at")
    return indices


def _capture(args) -> int:
    from src.data.capture import capture_frames
    with Project.open(args.project, create=False) as project:
        source = sources_repo.find_source(project.conn, args.source)
        if args.every is not None:
            if args.every < 1:
                raise LabelLoopError(f"--every must be 1 or more, got {args.every}", field="--every")
            indices = list(range(0, source.frame_count, args.every))
        else:
            indices = _parse_indices(args.at)
        frames = capture_frames(project, source, indices)
        print(f"captured {len(frames)} frame(s) of source {source.id} ({source.name}) "
              f"into {project.frames_dir}")
    return 0


def project_info(project: Project) -> dict:
    conn = project.conn
    sources = sources_repo.list_sources(conn)
    counts = classes_repo.annotation_counts(conn)
    return {
        "project": str(project.root),
        "sources": len(sources),
        "frames": frames_repo.count_frames(conn),
        "annotations": annotations_repo.count_annotations(conn),
        "classes": annotations_repo.counts_by_class_name(conn),
        "class_list": [{"id": c.id, "name": c.name, "kind": c.kind, "color": c.color,
                        "annotations": counts.get(c.id, 0)}
                       for c in classes_repo.list_classes(conn)],
        "source_list": [{"id": s.id, "name": s.name, "kind": s.kind, "fps": s.fps,
                         "frame_count": s.frame_count, "width": s.width, "height": s.height}
                        for s in sources],
    }


def _info(args) -> int:
    with Project.open(args.project, create=False) as project:
        info = project_info(project)
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    print(f"project {info['project']}: {info['sources']} source(s), {info['frames']} frame(s), "
          f"{info['annotations']} annotation(s)")
    for s in info["source_list"]:
        print(f"  source {s['id']}: {s['name']} ({s['kind']}, {s['width']}x{s['height']}, "
              f"{s['frame_count']} frames)")
    for c in info["class_list"]:
        kind = "frame tag" if c["kind"] == "tag" else "object class"
        print(f"  class {c['name']} ({kind}): {c['annotations']}")
    return 0


def _demo(args) -> int:
    from src.data.demo import build_demo_project
    with build_demo_project(args.project, seed=args.seed) as project:
        info = project_info(project)
        print(f"demo project built in {info['project']}: {info['frames']} frames, "
              f"{info['annotations']} annotations")
        for name, count in info["classes"].items():
            print(f"  {name}: {count}")
        if args.no_train:
            return 0
        return _demo_training(project, args)


def _demo_proposals(project: Project, run) -> None:
    from src.training.inference.demo import propose_on_uncaptured
    summary = propose_on_uncaptured(project, run)
    if summary is not None:
        print(f"the trained model proposed {summary.proposals} label(s) on {summary.frames} "
              f"uncaptured frame(s) of the demo video (stored as proposals to review)")


def _demo_training(project: Project, args) -> int:
    from src.cli.commands.train import ProgressBar, quiet_ultralytics
    quiet_ultralytics()
    from src.training.demo_loop import DATASET, train_demo_detector
    from src.training.events import EventBus
    bus = EventBus()
    ProgressBar().attach(bus)
    print(f"building dataset '{DATASET}' and training a detector "
          f"({args.epochs} epochs at {args.imgsz} px; --no-train skips this)")
    run, metrics = train_demo_detector(project, epochs=args.epochs, imgsz=args.imgsz, bus=bus)
    print(f"training run {run.id} {run.status}: {run.run_dir}")
    for key in sorted(k for k, v in metrics.items() if isinstance(v, (int, float))):
        print(f"  {key}: {metrics[key]:.4f}")
    _demo_proposals(project, run)
    print("next: python main.py --project", project.root, "(opens the annotator)")
    return 0 if run.status == "completed" else 1
