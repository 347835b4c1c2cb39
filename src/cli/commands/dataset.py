"""Dataset commands: `dataset build|list|show` and `export`."""
from __future__ import annotations

import argparse
import json
import sys

from src.db.project import Project

TASKS = ("detect", "segment", "classify", "crops")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build, list and show dataset snapshots")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="build a frozen, versioned snapshot datasets/NAME/vN/")
    b.add_argument("name", metavar="NAME")
    b.add_argument("--task", choices=TASKS, required=True)
    b.add_argument("--from", dest="sources", action="extend", nargs="+", default=[],
                   metavar="DIR", help="source project(s) to combine (classes matched by name);"
                                       " default: --project")
    b.add_argument("--split", default="0.7,0.2,0.1", help="train,val,test ratios")
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--group-by", choices=("block", "source", "none"), default="block",
                   help="keep near-duplicate frames in one split (default: blocks of"
                        " --block-size consecutive frames)")
    b.add_argument("--block-size", type=int, default=10)
    b.add_argument("--classes", help="comma-separated classes to keep (default: all)")
    b.add_argument("--drop", help="comma-separated classes to leave out")
    b.add_argument("--map", dest="mapping", default="",
                   help="rename/merge classes: OLD=NEW,OLD2=NEW")
    b.add_argument("--min-per-class", type=int, default=1,
                   help="fewest instances of every class in every split (default 1)")
    b.add_argument("--background", type=float, default=0.0,
                   help="add frames without annotations, up to this fraction of the"
                        " labelled frames")
    b.add_argument("--crop-padding", type=float, default=0.1)
    b.add_argument("--crop-min-size", type=int, default=8)
    b.add_argument("--augment", help="oversample in train: PIPELINE:CLASS=FACTOR,...,"
                                     " e.g. heavy:triangle=20")
    b.add_argument("--frames", help="only these frame ids of the project, e.g. 3,7,10-12"
                                     " (frames excluded from datasets are always left out)")
    b.add_argument("--kinds", help="annotation kinds to use, comma-separated: detect/crops: box"
                                   ",polygon (a polygon becomes its box); segment: polygon;"
                                   " classify: tag (default: all the task can use)")
    b.add_argument("--segment-boxes", choices=("skip", "reject"), default="skip",
                   help="segment: skip boxes (counted in the report) or refuse the build")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(handler=_build)

    ex = dsub.add_parser("exclude", help="mark frames 'exclude from datasets' (every build"
                                         " leaves them out), or include them again")
    ex.add_argument("frames", metavar="IDS", help="frame ids and ranges, e.g. 3,7,10-12")
    ex.add_argument("--include", action="store_true", help="include these frames again")
    ex.set_defaults(handler=_exclude)

    ls = dsub.add_parser("list", help="dataset snapshots of the project")
    ls.set_defaults(handler=_list)
    show = dsub.add_parser("show", help="the report of NAME (latest) or NAME:vN")
    show.add_argument("ref", metavar="NAME[:vN]")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    e = sub.add_parser("export", help="export annotations to YOLO, COCO, VOC or labelme,"
                                      " or a classify/crops dataset as image folders")
    e.add_argument("out", metavar="OUT", help="new (or empty) output folder")
    e.add_argument("--format", choices=("yolo", "coco", "voc", "labelme", "imagefolder"),
                   required=True, help="imagefolder: a classify/crops --dataset, as"
                                       " <split>/<class>/ folders plus labels.csv")
    e.add_argument("--dataset", metavar="NAME[:vN]",
                   help="export a dataset version (detect/segment: any annotation format;"
                        " classify/crops: imagefolder) instead of the project")
    e.set_defaults(handler=_export)


def spec_from_args(args):
    """The DatasetSpec a `dataset build` command line describes."""
    from src.data.datasets.spec import (DatasetSpec, parse_augment, parse_frame_ids,
                                        parse_mapping, parse_split, split_names)
    return DatasetSpec(
        name=args.name, task=args.task, sources=args.sources, split=parse_split(args.split),
        seed=args.seed, group_by=args.group_by, block_size=args.block_size,
        classes=split_names(args.classes), drop=split_names(args.drop) or [],
        mapping=parse_mapping(args.mapping), min_per_class=args.min_per_class,
        background=args.background, crop_padding=args.crop_padding,
        crop_min_size=args.crop_min_size,
        augment=parse_augment(args.augment) if args.augment else None,
        frames=parse_frame_ids(args.frames) if args.frames else None,
        kinds=split_names(args.kinds), segment_boxes=args.segment_boxes)


def _build(args) -> int:
    from src.data.datasets import build_dataset
    spec = spec_from_args(args)
    with Project.open(args.project) as project:
        record, path = build_dataset(project, spec)
        report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(summary_text(report))
        print(f"built {record.name}:v{record.version} -> {path}")
    return 0


def summary_text(report: dict) -> str:
    """A few lines: images and instances per class per split, what was skipped."""
    splits = ("train", "val", "test")
    width = max([len(c) for c in report["classes"]] + [10])
    lines = [f"{report['name']}:v{report['version']} ({report['task']}), split "
             f"{report['split']['ratios']} seed {report['split']['seed']} by "
             f"{report['split']['group_by']}",
             f"{'':{width}} " + " ".join(f"{s:>7}" for s in splits)]
    what = "crops" if report["task"] == "crops" else "images"
    lines.append(f"{what:{width}} " + " ".join(f"{report['images'][s]:>7}" for s in splits))
    for name, counts in report["instances"].items():
        lines.append(f"{name:{width}} " + " ".join(f"{counts[s]:>7}" for s in splits))
    augmented = report["augmented"]["images"]["train"]
    if augmented:
        lines.append(f"augmented copies in train: {augmented}")
    for reason, count in report["skipped"].items():
        lines.append(f"skipped: {reason}: {count}")
    return "\n".join(lines)


def _exclude(args) -> int:
    from src.data.datasets.spec import parse_frame_ids
    from src.db import dataset_exclusions
    from src.db import frames as frames_repo
    from src.errors import DatasetError
    ids = parse_frame_ids(args.frames)
    with Project.open(args.project, create=False) as project:
        known = {f.id for f in frames_repo.list_frames(project.conn)}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DatasetError(f"no frame with id {unknown[0]} in this project", field="IDS",
                               hint="frame ids are the frame_id of a dataset's manifest.json"
                                    "; or right click frames in the gallery")
        dataset_exclusions.set_excluded(project.conn, ids, not args.include)
        total = len(dataset_exclusions.excluded_frame_ids(project.conn))
    print(f"{'included' if args.include else 'excluded'} {len(ids)} frame(s); "
          f"{total} frame(s) of the project are excluded from datasets")
    return 0


def _list(args) -> int:
    from src.db import datasets as datasets_repo
    with Project.open(args.project, create=False) as project:
        records = datasets_repo.list_datasets(project.conn)
    if not records:
        print("no datasets yet (python main.py dataset build NAME --task detect)")
    for r in records:
        images = sum(r.summary.get("images", {}).values())
        print(f"{r.name}:v{r.version}\t{r.task}\t{images} images\t"
              f"{len(r.summary.get('classes', []))} classes\t{r.created_at}\t{r.path}")
    return 0


def _show(args) -> int:
    from src.data.datasets import resolve_dataset
    with Project.open(args.project, create=False) as project:
        record, path = resolve_dataset(project, args.ref)
    if args.json:
        sys.stdout.write((path / "report.json").read_text(encoding="utf-8"))
    else:
        sys.stdout.write((path / "report.md").read_text(encoding="utf-8"))
        print(f"\npath: {path}")
    return 0


def _export(args) -> int:
    from src.data.formats import export_annotations
    with Project.open(args.project, create=False) as project:
        summary = export_annotations(project, args.out, args.format, dataset=args.dataset)
    print(json.dumps(summary, indent=2))
    return 0
