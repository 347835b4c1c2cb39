"""`predict SOURCE ...`, `propagate SOURCE --from-frame N --to-frame M`, and
`proposals accept|reject|list SOURCE` for scripting the proposal review.

SOURCE is a project source (id or name, as `import` printed it) or a path: an image, an
image folder or a video. --store (and propagate) writes proposals into the project,
registering the video/folder first when it is a path. Ctrl-C stops after the current batch;
what was predicted until then is still stored.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections import Counter

from src.db.project import Project
from src.errors import LabelLoopError

EXIT_CANCELLED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="run a model on an image, folder, video or project "
                                       "source; --store keeps the results as proposals")
    _add_common(p)
    p.add_argument("--frames", metavar="A:B", help="frame range, B excluded (A:B, A:, :B, "
                                                   "A:B:STEP); default every frame")
    p.add_argument("--two-stage", action="store_true",
                   help="relabel each detected box with the active crop classifier")
    p.add_argument("--classifier", default="active", metavar="VERSION",
                   help="crop classifier of --two-stage (default: the active one)")
    p.add_argument("--store", action="store_true",
                   help="store the results as proposals (status proposed) in the project")
    p.add_argument("--save-video", metavar="OUT",
                   help="write the annotated frames: a video (.mp4/.avi/.mkv) or a new folder")
    p.add_argument("--json", action="store_true", help="print every prediction as JSON")
    p.set_defaults(handler=_predict)

    p = sub.add_parser("propagate", help="follow the detector's objects over frames with a "
                                         "tracker and store them as proposals with track ids")
    _add_common(p)
    p.add_argument("--from-frame", type=int, required=True, metavar="N")
    p.add_argument("--to-frame", type=int, required=True, metavar="M", help="last frame, included")
    p.add_argument("--tracker", default="bytetrack", choices=("bytetrack", "botsort"))
    p.add_argument("--json", action="store_true", help="print the tracks as JSON")
    p.set_defaults(handler=_propagate)

    p = sub.add_parser("proposals", help="accept, reject or list model proposals")
    p.add_argument("action", choices=("accept", "reject", "list"))
    p.add_argument("source", metavar="SOURCE", help="project source id or name")
    p.add_argument("--frames", metavar="A:B", help="only these frames (B excluded)")
    p.add_argument("--track", type=int, help="only this track's boxes")
    p.add_argument("--model", metavar="VERSION", help="only this model version's proposals")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_proposals)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="image, folder, video, or project source")
    p.add_argument("--model", default="active", metavar="VERSION|active",
                   help="model version id or name (default: the active detector, else "
                        "segmenter, else classifier)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default: training's)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, 0, cuda:0, mps")


def _load(project: Project, args, *, two_stage: bool = False):
    from src.training.inference.loading import CROP_TASKS, load_predictor
    from src.training.inference.two_stage import TwoStagePredictor
    options = dict(conf=args.conf, iou=args.iou, imgsz=args.imgsz, device=args.device,
                   batch=args.batch)
    version, predictor = load_predictor(project, args.model, **options)
    if two_stage:
        if predictor.task == "classify":
            raise LabelLoopError("--two-stage needs a detector as --model", field="--model")
        _, classifier = load_predictor(project, args.classifier, tasks=CROP_TASKS,
                                       device=args.device, batch=max(args.batch, 32))
        predictor = TwoStagePredictor(predictor, classifier)
    return version, predictor


class _Stop:
    """SIGINT asks to stop after the current batch (a second one aborts)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> "_Stop":
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this batch (Ctrl-C again aborts)", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _progress(label: str):
    if not sys.stderr.isatty():
        return None
    return lambda done, total: print(f"\r{label} {done}/{total}", end="" if done < total
                                     else "\n", file=sys.stderr, flush=True)


def _predict(args) -> int:
    from src.cli.commands.train import quiet_ultralytics
    quiet_ultralytics()
    from src.training.inference.media import open_input, parse_frames
    with Project.open(args.project, create=False) as project, _Stop() as stop:
        version, predictor = _load(project, args, two_stage=args.two_stage)
        with open_input(args.source, project, register=args.store) as media:
            indices = parse_frames(args.frames, media.frame_count)
            outcome = _run_predict(project, args, version, predictor, media, indices, stop)
    _report(args, version, predictor, outcome)
    return EXIT_CANCELLED if stop.requested else 0


def _run_predict(project, args, version, predictor, media, indices, stop) -> dict:
    from src.training.inference.render import AnnotatedOutput
    from src.training.inference.run import predict_media, store_predictions
    output = AnnotatedOutput(args.save_video, media.fps) if args.save_video else None
    preds = []

    def keep(pred, image) -> None:
        if output is not None:
            output.add(image, pred)
        preds.append(pred)

    try:
        progress = _progress("predicting")
        summary = None
        if args.store:
            summary = store_predictions(project, media, version, predictor, indices,
                                        progress=progress, should_stop=stop, on_prediction=keep)
        else:
            for pred, image in predict_media(predictor, media, indices, progress=progress,
                                             should_stop=stop, keep_images=output is not None):
                keep(pred, image)
        written = output.finish() if output is not None else None
    except BaseException:
        if output is not None:
            output.abort()
        raise
    return {"predictions": preds, "summary": summary, "written": written,
            "source": media.name}


def _report(args, version, predictor, outcome: dict) -> None:
    preds, summary = outcome["predictions"], outcome["summary"]
    if args.json:
        print(json.dumps({"model": {"id": version.id, "name": predictor.model_name,
                                    "task": predictor.task},
                          "source": outcome["source"],
                          "stored": _summary_dict(summary),
                          "predictions": [p.to_dict() for p in preds]}))
        return
    counts = Counter(d.class_name for p in preds for d in p.detections)
    counts.update(p.top1.class_name for p in preds if p.top1 is not None)
    print(f"{predictor.model_name}: {len(preds)} frame(s) of {outcome['source']}, "
          f"{sum(len(p.detections) for p in preds)} object(s)"
          + "".join(f", {n} {name}" for name, n in sorted(counts.items())))
    if summary is not None:
        print(f"stored {summary.proposals} proposal(s) on {summary.frames} frame(s) "
              f"({summary.captured} newly captured, {summary.duplicates_skipped} already "
              f"accepted skipped)")
    if outcome["written"] is not None:
        print(f"annotated output: {outcome['written']}")


def _summary_dict(summary) -> dict | None:
    if summary is None:
        return None
    return {"proposals": summary.proposals, "frames": summary.frames,
            "captured": summary.captured, "duplicates_skipped": summary.duplicates_skipped,
            "classes_created": summary.classes_created}


def _propagate(args) -> int:
    from src.cli.commands.train import quiet_ultralytics
    quiet_ultralytics()
    from src.training.inference.media import open_input, parse_frames
    from src.training.inference.propagate import propagate
    from src.training.inference.run import ProposalWriter
    if args.to_frame < args.from_frame:
        raise LabelLoopError(f"--to-frame {args.to_frame} is before --from-frame "
                             f"{args.from_frame}", field="--to-frame")
    with Project.open(args.project, create=False) as project, _Stop() as stop:
        version, predictor = _load(project, args)
        with open_input(args.source, project, register=True) as media:
            indices = parse_frames(f"{args.from_frame}:{args.to_frame + 1}", media.frame_count)
            writer = ProposalWriter(project, media.source, version)
            for pred, image in propagate(predictor, media, indices, tracker=args.tracker,
                                         progress=_progress("tracking"), should_stop=stop):
                writer.add(pred, image)
            summary = writer.commit()
    _report_tracks(args, summary, summary.tracks)
    return EXIT_CANCELLED if stop.requested else 0


def _report_tracks(args, summary, tracks: dict[int, list]) -> None:
    rows = [{"track_id": tid, "first_frame": seen[0][0], "last_frame": seen[-1][0],
             "boxes": len(seen), "class": Counter(c for _, c in seen).most_common(1)[0][0]}
            for tid, seen in sorted(tracks.items())]
    if args.json:
        print(json.dumps({"stored": _summary_dict(summary), "tracks": rows}))
        return
    print(f"{len(rows)} track(s) over {summary.frames} frame(s); stored {summary.proposals} "
          f"proposal(s) ({summary.captured} frames newly captured)")
    for r in rows:
        print(f"  track {r['track_id']}: {r['class']}, frames {r['first_frame']}-"
              f"{r['last_frame']} ({r['boxes']} boxes)")


def _proposals(args) -> int:
    from src.db import proposals as proposals_repo
    from src.db import sources as sources_repo
    from src.training.inference.media import parse_frames
    with Project.open(args.project, create=False) as project:
        source = sources_repo.find_source(project.conn, args.source)
        first = last = None
        if args.frames:
            indices = parse_frames(args.frames, source.frame_count)
            first, last = indices[0], indices[-1]
        model_source = None
        if args.model:
            from src.training.inference.loading import find_version
            model_source = f"model:{find_version(project, args.model).id}"
        ids = proposals_repo.find_proposals(project.conn, source_id=source.id, first=first,
                                            last=last, track_id=args.track,
                                            model_source=model_source)
        if args.action == "list":
            return _list_proposals(project, args, ids)
        count = (proposals_repo.accept if args.action == "accept" else proposals_repo.reject)(
            project.conn, ids)
    verb = "accepted" if args.action == "accept" else "rejected"
    print(json.dumps({verb: count}) if args.json else f"{verb} {count} proposal(s)")
    return 0


def _list_proposals(project, args, ids: list[int]) -> int:
    from src.db import annotations as annotations_repo
    from src.db import classes as classes_repo
    from src.db import frames as frames_repo
    from src.db import proposals as proposals_repo
    names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
    details = proposals_repo.get_details(project.conn, ids)
    rows = []
    for ann in annotations_repo.get_annotations(project.conn, ids):
        frame = frames_repo.get_frame(project.conn, ann.frame_id)
        d = details.get(ann.id)
        rows.append({"id": ann.id, "frame_index": frame.frame_index, "class": names[ann.class_id],
                     "kind": ann.kind, "geometry": ann.geometry, "confidence": ann.confidence,
                     "model": ann.source, "track_id": d.track_id if d else None,
                     "detector_class": d.detector_class if d else None,
                     "detector_confidence": d.detector_confidence if d else None})
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            track = f" track {r['track_id']}" if r["track_id"] else ""
            print(f"{r['id']}: frame {r['frame_index']} {r['class']} {r['confidence']:.3f} "
                  f"({r['model']}{track})")
        print(f"{len(rows)} proposal(s)")
    return 0
