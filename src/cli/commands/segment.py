"""`segment SOURCE --frame N --point x,y[,+|-] ... [--box x1,y1,x2,y2] [--store]` and
`track SOURCE --from-frame N --to-frame M --object ID [--lit-lora]` with Segment Anything.

SOURCE is a project source (id or name). Weights come from the project's models/base
(`sam2_t.pt`, `mobile_sam.pt`); without them both commands exit 2 saying which file to put
where. `--untrained` builds the architecture without weights (masks are meaningless: tests
and timing only). `segment --store` keeps the best mask as a proposed polygon;
`track` stores each tracked frame's mask as a proposed polygon with the predicted IoU as
confidence. Ctrl-C stops tracking after the current frame; what was tracked is stored.
`track --adapter VERSION` tracks with a registered LIT-LoRA adapter (a `sam_adapter` model
version); `sam register SOURCE --object ID` registers the adapter learned for an object as
such a version (then `models list/show/activate/rename/delete/export` handle it).
"""
from __future__ import annotations

import argparse
import json

from src.db.project import Project
from src.errors import LabelLoopError

EXIT_CANCELLED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="masks from clicks/box on one frame (Segment Anything)")
    p.add_argument("source", metavar="SOURCE", help="project source id or name")
    p.add_argument("--frame", type=int, required=True, metavar="N")
    p.add_argument("--point", action="append", type=_point, default=[], metavar="x,y[,+|-]",
                   help="a positive (+, default) or negative (-) click; repeat for more")
    p.add_argument("--box", type=_box, metavar="x1,y1,x2,y2", help="a box prompt")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="class of the stored polygon (created when new); needed by --store")
    p.add_argument("--store", action="store_true",
                   help="store the best mask as a proposed polygon on the frame")
    _add_common(p)
    p.set_defaults(handler=_segment)

    p = sub.add_parser("track", help="follow an annotated object through frames with SAM 2 "
                                     "and store the masks as proposed polygons")
    p.add_argument("source", metavar="SOURCE", help="project source id or name")
    p.add_argument("--from-frame", type=int, required=True, metavar="N")
    p.add_argument("--to-frame", type=int, required=True, metavar="M", help="last frame, included")
    p.add_argument("--object", type=int, required=True, metavar="ID",
                   help="id of the box or polygon on --from-frame to track")
    adapter = p.add_mutually_exclusive_group()
    adapter.add_argument("--lit-lora", action="store_true",
                         help="use the mask-decoder adapter learned for this object in the "
                              "annotator")
    adapter.add_argument("--adapter", metavar="VERSION",
                         help="use a registered SAM adapter version (id, name, or "
                              "active:sam_adapter)")
    _add_common(p)
    p.set_defaults(handler=_track)

    p = sub.add_parser("sam", help="SAM adapters: register an object's LIT-LoRA adapter as "
                                   "a model version")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    r = verbs.add_parser("register", help="register the LIT-LoRA adapter learned for an object "
                                          "as a sam_adapter model version (with its base)")
    r.add_argument("source", metavar="SOURCE", help="project source id or name")
    r.add_argument("--object", type=int, required=True, metavar="ID",
                   help="the tracked object (annotation id) whose adapter to register")
    r.add_argument("--name", help="readable name of the version (default: "
                                  "sam_adapter-<date>-valIoU=<x>)")
    _add_common(r, tolerance=False)
    r.set_defaults(handler=_register)


def _add_common(p: argparse.ArgumentParser, *, tolerance: bool = True) -> None:
    p.add_argument("--model", default="sam2_t", help="sam2_t (default), sam2.1_t, sam2_s, "
                                                     "mobile_sam (segment only)")
    p.add_argument("--imgsz", type=int, default=1024, help="model input size (default 1024)")
    if tolerance:
        p.add_argument("--tolerance", type=float, default=1.5,
                       help="polygon simplification, pixels (default 1.5)")
    p.add_argument("--untrained", action="store_true",
                   help="build the model without weights (meaningless masks: tests, timing)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _point(text: str) -> tuple[float, float, bool]:
    parts = text.split(",")
    sign = parts.pop() if len(parts) == 3 else "+"
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y[,+|-], got {text[:40]!r}") from None
    if sign not in ("+", "-"):
        raise argparse.ArgumentTypeError(f"the third part must be + or -, got {sign[:5]!r}")
    return x, y, sign == "+"


def _box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected x1,y1,x2,y2, got {text[:40]!r}")
    return values


def _open(project: Project, args):
    from src.cli.commands.train import quiet_ultralytics
    quiet_ultralytics()
    from src.data.video import open_media
    from src.db import sources as sources_repo
    from src.training.sam.loading import load_engine, project_cache
    source = sources_repo.find_source(project.conn, args.source)
    engine = load_engine(project, args.model, image_size=args.imgsz, untrained=args.untrained)
    return source, engine, project_cache(project, engine), open_media(source.path, cache_bytes=0)


def _check_frame(index: int, source, field: str) -> None:
    if not 0 <= index < source.frame_count:
        raise LabelLoopError(f"frame {index} is outside {source.name} "
                             f"(0..{source.frame_count - 1})", field=field)


def _segment(args) -> int:
    from src.training.sam.polygon import mask_to_polygon
    from src.training.sam.prompts import PointPrompt, Prompt, check_prompt
    with Project.open(args.project, create=False) as project:
        if args.store and not args.class_name:
            raise LabelLoopError("--store needs --class NAME", field="--class")
        source, engine, cache, reader = _open(project, args)
        with reader:
            _check_frame(args.frame, source, "--frame")
            prompt = Prompt([PointPrompt(x, y, pos) for x, y, pos in args.point], args.box)
            image = reader.read(args.frame)
            check_prompt(prompt, *image.shape[:2])
            emb = cache.get_or_compute(source.id, args.frame, lambda: image)
            cands = engine.segment(emb, prompt)
            polygons = [mask_to_polygon(c.mask, args.tolerance) for c in cands]
            stored = _store_segment(project, source, args, image, cands[0], polygons[0]) \
                if args.store else None
    rows = [{"iou": c.iou, "area": c.area, "polygon": p} for c, p in zip(cands, polygons)]
    if args.json:
        print(json.dumps({"model": engine.weights.name, "untrained": engine.weights.untrained,
                          "frame": args.frame, "candidates": rows, "stored": stored}))
    else:
        for i, r in enumerate(rows):
            n = len(r["polygon"] or [])
            print(f"candidate {i}: predicted IoU {r['iou']:.3f}, {r['area']} px, {n} points")
        if stored is not None:
            print(f"stored proposal {stored} ({args.class_name})")
    return 0


def _store_segment(project, source, args, image, cand, polygon) -> int | None:
    from src.data.capture import capture_array
    from src.db import classes as classes_repo
    from src.db import frames as frames_repo
    from src.db import proposals as proposals_repo
    from src.db.records import Annotation
    if polygon is None:
        raise LabelLoopError("the mask is empty: nothing to store", field="--point",
                             hint="click inside the object or give a box")
    cls = classes_repo.get_class_by_name(project.conn, args.class_name) \
        or classes_repo.add_class(project.conn, args.class_name)
    frame = frames_repo.get_frame_at(project.conn, source.id, args.frame) \
        or capture_array(project, source, args.frame, image)
    ann = Annotation(frame.id, cls.id, "polygon", polygon, f"model:{args.model}", cand.iou,
                     "proposed")
    return proposals_repo.replace_proposals(project.conn, ann.source, [], [ann])[0].id


def _track(args) -> int:
    from src.cli.commands.predict import _progress, _Stop
    from src.training.sam.loading import object_mask
    from src.training.sam.session import TrackSession
    from src.training.sam.store import store_tracked
    if args.to_frame < args.from_frame:
        raise LabelLoopError(f"--to-frame {args.to_frame} is before --from-frame "
                             f"{args.from_frame}", field="--to-frame")
    with Project.open(args.project, create=False) as project, _Stop() as stop:
        source, engine, cache, reader = _open(project, args)
        with reader:
            _check_frame(args.from_frame, source, "--from-frame")
            mask, class_id = object_mask(project, source, args.from_frame, args.object)
            session = TrackSession(cache, source.id, reader.frame_count, reader.read)
            adapter = _lit_lora(project, engine, source, args, session) if args.lit_lora \
                else _registered(project, engine, args, session) if args.adapter else None
            session.start_from_mask(args.from_frame, mask)
            tracked = session.propagate(args.to_frame, should_stop=stop,
                                        progress=_progress("tracking"))
            summary = store_tracked(project, source, class_id, args.object, args.model, tracked,
                                    reader.read, tolerance=args.tolerance)
    frames = [{"frame": t.frame_index, "confidence": t.confidence, "present": t.present}
              for t in tracked]
    if args.json:
        print(json.dumps({"model": args.model, "object": args.object, "adapter": adapter,
                          "stopped": stop.requested, "frames": frames,
                          "stored": {"proposals": summary.proposals, "frames": summary.frames,
                                     "captured": summary.captured,
                                     "annotation_ids": summary.annotation_ids}}))
    else:
        print(f"tracked object {args.object} over {len(tracked)} frame(s)"
              f"{_adapter_words(adapter)}; stored {summary.proposals} "
              f"proposal(s) ({summary.captured} frames newly captured)")
    return EXIT_CANCELLED if stop.requested else 0


def _lit_lora(project, engine, source, args, session) -> dict:
    """Load the object's adapter into the tracker; a typed error when there is none."""
    from src.training.sam.lit_lora import LitLora
    lit = LitLora(engine, LitLora.folder_for(project.root, source.id, args.object),
                  base_ref=engine.key)
    if lit.decoder is None:
        raise LabelLoopError(f"no LIT-LoRA adapter learned for object {args.object} of "
                             f"{source.name}", field="--lit-lora",
                             hint="correct tracked frames with 'Learn from corrections' on in "
                                  "the annotator, or track without --lit-lora")
    session.tracker.decoder = lit.decoder
    meta = lit.adapters.meta()
    return {"samples": meta.samples, "val_iou": meta.metric}


def _registered(project, engine, args, session) -> dict:
    """Load a registered sam_adapter version into the tracker (files verified, base checked)."""
    from src.training.models import ModelManager
    from src.training.models.sam_adapter import load_adapter_decoder
    version, decoder = load_adapter_decoder(ModelManager(project), args.adapter, engine)
    session.tracker.decoder = decoder
    return {"version": version.id, "display_name": version.display_name,
            "samples": version.metrics.get("samples"), "val_iou": version.metrics.get("val_iou")}


def _adapter_words(adapter: dict | None) -> str:
    if adapter is None:
        return ""
    if "version" in adapter:
        return f" with adapter version {adapter['version']} ({adapter['display_name']})"
    return " with its LIT-LoRA adapter"


def _register(args) -> int:
    from src.db import sources as sources_repo
    from src.training.models import ModelManager
    from src.training.models.sam_adapter import SamBase, register_sam_adapter
    from src.training.sam.lit_lora import LitLora
    from src.training.sam.weights import find_weights
    with Project.open(args.project, create=False) as project:
        source = sources_repo.find_source(project.conn, args.source)
        weights = find_weights(args.model, project.base_weights_dir, untrained=args.untrained,
                               allow_download=False)
        folder = LitLora.folder_for(project.root, source.id, args.object) / "adapter"
        learned = {"project": project.root.name, "source": source.name, "source_id": source.id,
                   "object_id": args.object}
        version = register_sam_adapter(ModelManager(project), folder,
                                       SamBase.of(weights, args.imgsz), learned, name=args.name,
                                       allow_untrained=args.untrained)
    if args.json:
        print(json.dumps({"id": version.id, "display_name": version.display_name,
                          "task": version.task, "metrics": version.metrics,
                          "base": version.lineage[0]}))
    else:
        print(f"registered version {version.id} {version.display_name} (sam_adapter, base "
              f"{version.lineage[0]['display_name'].removeprefix('SAM base ')})")
    return 0
