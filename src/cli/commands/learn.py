"""`learn simulate|status|promote|discard|suggest`: learning from corrections from the
command line.

`learn simulate --source S --base VERSION` runs the simulated annotator of
src/training/learning/simulate.py over the source's frames with ground truth and prints the
edits per frame and the updates (time, validation score, adapter used or not). The others
act on the open learning session of a source and base (the one the GUI uses).
`learn suggest --source S` ranks the frames to label next (src/training/suggest/) and keeps
the ranking as the source's last one (the window's N goes through it).
"""
from __future__ import annotations

import argparse
import json
import sys

from src.db.project import Project
from src.training.learning.settings import LearnSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn", help="learning from corrections: simulate, status, promote, "
                                     "discard; suggest the frames to label next")
    actions = p.add_subparsers(dest="learn_action", metavar="ACTION", required=True)

    s = actions.add_parser("simulate", help="simulated annotator over the frames with ground "
                                            "truth: edits per frame, with or without adapting")
    _add_session_args(s)
    s.add_argument("--update-every", type=int, default=5, metavar="K",
                   help="update after every K corrected frames (default 5)")
    s.add_argument("--budget-s", type=float, default=20.0, help="wall-time budget of an update")
    s.add_argument("--max-epochs", type=int, default=LearnSettings().max_epochs,
                   help="epochs at most per update")
    s.add_argument("--imgsz", type=int, default=None,
                   help="image size (default: the base's training size)")
    s.add_argument("--no-adapt", action="store_true", help="proposals from the base only")
    s.add_argument("--no-wait", action="store_true",
                   help="keep annotating while an update runs (default: pause until it ends)")
    s.add_argument("--from-frame", type=int, default=None, metavar="N")
    s.add_argument("--to-frame", type=int, default=None, metavar="M", help="last frame, included")
    s.add_argument("--replace", action="store_true",
                   help="discard the open session of this source and base first")
    s.add_argument("--keep", action="store_true",
                   help="keep the simulation's session open (to promote it); default: discard")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_simulate)

    for name, handler, text in (("status", _status, "show the open session"),
                                ("discard", _discard, "discard the open session's adapter")):
        a = actions.add_parser(name, help=text)
        _add_session_args(a)
        a.add_argument("--json", action="store_true")
        a.set_defaults(handler=handler)
    a = actions.add_parser("promote", help="register base + adapter as a model version")
    _add_session_args(a)
    a.add_argument("--name", required=True, help="name of the new model version")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=_promote)
    _add_suggest(actions)


def _add_session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, metavar="S", help="project source id or name")
    p.add_argument("--base", default="active", metavar="VERSION",
                   help="base model version, a detector or a segmenter (default: the active "
                        "detector, else the active segmenter)")


def _simulate(args) -> int:
    from src.training.learning.simulate import simulate

    settings = LearnSettings(update_every=args.update_every, budget_s=args.budget_s,
                             imgsz=args.imgsz, max_epochs=args.max_epochs)
    with Project.open(args.project, create=False) as project:
        source = _source(project, args.source)
        if args.replace:
            _discard_open(project, source.id, args.base)
        show = None if args.json else _print_frame
        result = simulate(project, source.id, args.base, settings=settings,
                          adapt=not args.no_adapt, wait=not args.no_wait,
                          first=args.from_frame, last=args.to_frame, progress=show)
        if result.session_id is not None and not args.keep:
            _discard_open(project, source.id, args.base)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for u in result.updates:
        print(f"update after {u.after_frames} frames: {u.elapsed_s:.1f} s, {u.epochs} epochs, "
              f"{u.reason}")
    tail = result.mean_edits(11)
    print(f"mean edits per frame: {result.mean_edits():.2f} over {len(result.frames)} frames"
          + (f"; from the 11th frame on: {tail:.2f}" if tail is not None else ""))
    return 0


def _print_frame(f) -> None:
    where = "base + adapter" if f.adapter else "base"
    print(f"frame {f.frame_index}: {f.edits} edits {f.by_kind} ({where})", flush=True)


def _status(args) -> int:
    with Project.open(args.project, create=False) as project:
        session = _open_session(project, args)
        status = session.status()
    if args.json:
        from dataclasses import asdict
        print(json.dumps(asdict(status), indent=2))
    else:
        print(f"session {status.session_id} on {status.base}: {status.corrected_frames} "
              f"corrected frames, {status.updates} updates; {status.reason}")
    return 0


def _promote(args) -> int:
    with Project.open(args.project, create=False) as project:
        version = _open_session(project, args).promote(args.name)
    print(json.dumps({"id": version.id, "display_name": version.display_name,
                      "parent_id": version.parent_id}) if args.json else
          f"promoted to model version {version.id} ({version.display_name}), parent "
          f"{version.parent_id}")
    return 0


def _discard(args) -> int:
    with Project.open(args.project, create=False) as project:
        _open_session(project, args).discard()
    print(json.dumps({"discarded": True}) if args.json else "session discarded")
    return 0


def _source(project, ref: str):
    from src.db import sources as sources_repo
    return sources_repo.find_source(project.conn, ref)


def _open_session(project, args):
    from src.db import learning as learning_repo
    from src.errors import LabelLoopError
    from src.training.inference.loading import find_version
    from src.training.learning.session import SUPPORTED_TASKS, LearningSession

    source = _source(project, args.source)
    base = find_version(project, args.base, SUPPORTED_TASKS)
    if learning_repo.find_open_session(project.conn, source.id, base.id) is None:
        raise LabelLoopError(f"no open learning session for source {source.name} and "
                             f"{base.display_name}", field="--source",
                             hint="start one in the annotator or with `learn simulate --keep`")
    return LearningSession.open(project, source.id, base.id)


def _discard_open(project, source_id: int, base_ref: str) -> None:
    from src.db import learning as learning_repo
    from src.training.inference.loading import find_version
    from src.training.learning.session import SUPPORTED_TASKS, LearningSession

    base = find_version(project, base_ref, SUPPORTED_TASKS)
    if learning_repo.find_open_session(project.conn, source_id, base.id) is not None:
        session = LearningSession.open(project, source_id, base.id)
        session.discard()


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
    from src.training.suggest.ranking import store_ranking, suggest_frames
    with Project.open(args.project, create=False) as project:
        source = sources_repo.find_source(project.conn, args.source)
        version, predictor = load_predictor(project, args.model, device=args.device)
        adapted = _session_adapter(project, source.id, version)
        with open_input(str(source.id), project) as media:
            within = parse_frames(args.frames, media.frame_count) if args.frames else None
            report = suggest_frames(project, media, predictor, second=adapted,
                                    count=args.count, samples=args.samples, within=within,
                                    progress=_progress())
        store_ranking(project, report, version.id)
    if args.json:
        print(json.dumps({"source": source.name, "model": {"id": version.id,
                                                          "name": version_label(version)},
                          "candidates": report.candidates, "labelled": report.labelled,
                          "skipped_duplicates": report.skipped_duplicates,
                          "compared_with_adapter": report.compared,
                          "suggestions": [s.to_dict() for s in report.suggestions]}))
        return 0
    print(f"{version_label(version)} on {source.name}: {report.candidates} candidate frame(s),"
          f" {report.labelled} labelled, {report.skipped_duplicates} near-duplicate(s) skipped"
          + ("; disagreement with the learning session's adapter scored" if report.compared
             else ""))
    for rank, s in enumerate(report.suggestions, 1):
        where = "captured" if s.frame_id is not None else "not captured"
        print(f"  {rank:2d}. frame {s.frame_index} ({where}) score {s.score:.3f}")
    return 0


def _session_adapter(project, source_id: int, version):
    """The open learning session's predictor (base + adapter) of this source and base, when
    its adapter is in use: its disagreement with the base is scored too."""
    from src.training.learning.session import SUPPORTED_TASKS, LearningSession
    if version.task not in SUPPORTED_TASKS:
        return None
    session = LearningSession.existing(project, source_id, version.id)
    if session is None or not session.status().adapter_in_use:
        return None
    return session.predictor()


def _progress():
    if not sys.stderr.isatty():
        return None
    return lambda done, total: print(f"\rscoring {done}/{total}", end="" if done < total
                                     else "\n", file=sys.stderr, flush=True)
