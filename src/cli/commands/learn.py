"""`learn suggest --source S` (which frames to label next) and the other commands of the
learning loop (issue 14): one `learn` command, one verb each."""
from __future__ import annotations

import argparse
import json
import sys

from src.db.project import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn", help="learning from corrections: suggest the frames to "
                                     "label next")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _add_suggest(verbs)


# ---- learn suggest -----------------------------------------------------------------------
def _add_suggest(verbs: argparse._SubParsersAction) -> None:
    s = verbs.add_parser("suggest", help="rank unlabelled frames of a source by the model's "
                                         "uncertainty, skipping near-duplicates of labelled "
                                         "frames")
    s.add_argument("--source", required=True, metavar="S", help="project source id or name")
    s.add_argument("--model", default="active", metavar="VERSION",
                   help="model version (default: the active detector, else segmenter, "
                        "else classifier)")
    s.add_argument("--count", type=int, default=10, metavar="N", help="frames to suggest")
    s.add_argument("--samples", type=int, default=60, metavar="M",
                   help="uncaptured frames of the video looked at, spread evenly")
    s.add_argument("--frames", metavar="A:B", help="only frames of this range (B excluded)")
    s.add_argument("--device", default="auto", help="auto, cpu, 0, cuda:0, mps")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_suggest)


def _suggest(args) -> int:
    from src.cli.commands.train import quiet_ultralytics
    quiet_ultralytics()
    from src.db import sources as sources_repo
    from src.training.inference.loading import load_predictor, version_label
    from src.training.inference.media import open_input, parse_frames
    from src.training.suggest.ranking import suggest_frames
    with Project.open(args.project, create=False) as project:
        source = sources_repo.find_source(project.conn, args.source)
        version, predictor = load_predictor(project, args.model, device=args.device)
        with open_input(str(source.id), project) as media:
            within = parse_frames(args.frames, media.frame_count) if args.frames else None
            report = suggest_frames(project, media, predictor, count=args.count,
                                    samples=args.samples, within=within,
                                    progress=_progress())
    if args.json:
        print(json.dumps({"source": source.name, "model": {"id": version.id,
                                                          "name": version_label(version)},
                          "candidates": report.candidates, "labelled": report.labelled,
                          "skipped_duplicates": report.skipped_duplicates,
                          "suggestions": [s.to_dict() for s in report.suggestions]}))
        return 0
    print(f"{version_label(version)} on {source.name}: {report.candidates} candidate frame(s),"
          f" {report.labelled} labelled, {report.skipped_duplicates} near-duplicate(s) skipped")
    for rank, s in enumerate(report.suggestions, 1):
        where = "captured" if s.frame_id is not None else "not captured"
        print(f"  {rank:2d}. frame {s.frame_index} ({where}) score {s.score:.3f}")
    return 0


def _progress():
    if not sys.stderr.isatty():
        return None
    return lambda done, total: print(f"\rscoring {done}/{total}", end="" if done < total
                                     else "\n", file=sys.stderr, flush=True)
