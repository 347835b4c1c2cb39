"""`models list|show|activate|rename|describe|delete|trust|import|export|compare`.

A version is named by its id, its readable name, NAME:vN, or active:<task>.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys

from src.db.project import Project

_TASKS = ("detect", "segment", "classify", "crop_classifier")
_LISTED_TASKS = (*_TASKS, "sam_adapter")     # SAM adapters are listed, never imported bare


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, activate, compare, export and import trained "
                                      "model versions",
                       description="Model versions of the project. VERSION is an id, a "
                                   "readable name, NAME:vN or active:<task>.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _add(verbs, "list", _list, "versions, newest first", task_opt=True, json_opt=True)
    _add(verbs, "show", _show, "one version: files, lineage, metrics", ref=True, json_opt=True)
    _add(verbs, "activate", _activate, "make it the active model of its task", ref=True)
    r = _add(verbs, "rename", _rename, "give it another readable name", ref=True)
    r.add_argument("name")
    d = _add(verbs, "describe", _describe, "set its description", ref=True)
    d.add_argument("text")
    d = _add(verbs, "delete", _delete, "delete its files and record", ref=True)
    d.add_argument("--force", action="store_true", help="also the active version")
    _add(verbs, "trust", _trust, "trust an imported version's files (or a .pt file) as "
                                 "they are now: loading a .pt runs code it contains",
         ref=True)
    i = _add(verbs, "import", _import, "register a bundle (.zip) or an ultralytics .pt file")
    i.add_argument("file")
    i.add_argument("--task", choices=_TASKS, help="the task of a bare .pt file")
    i.add_argument("--name", help="series name (default: the bundle's or the file's)")
    i.add_argument("--trust", action="store_true",
                   help="trust it now (a .pt runs code when loaded: only files you know)")
    e = _add(verbs, "export", _export, "write ONNX (or another ultralytics format) or a "
                                       "bundle", ref=True)
    e.add_argument("--format", default="onnx", help="onnx (default), bundle, or an "
                                                    "ultralytics format (torchscript, ...)")
    e.add_argument("--out", help="output file (default: <readable name>.<suffix> here)")
    e.add_argument("--imgsz", type=int, help="input size (default: the training size)")
    c = _add(verbs, "compare", _compare, "re-evaluate versions on one dataset split, side "
                                         "by side", json_opt=True)
    c.add_argument("refs", nargs="+", metavar="VERSION")
    c.add_argument("--dataset", help="NAME[:vN] or a dataset folder (default: the first "
                                     "version's)")
    c.add_argument("--split", default="val", choices=("train", "val", "test"))
    c.add_argument("--device", default="cpu")


def _add(verbs, name, handler, help_text, *, ref=False, task_opt=False, json_opt=False):
    p = verbs.add_parser(name, help=help_text, description=help_text)
    if ref:
        p.add_argument("ref", metavar="VERSION")
    if task_opt:
        p.add_argument("--task", choices=_LISTED_TASKS)
    if json_opt:
        p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(handler=lambda args: _with_manager(args, handler))
    return p


def _with_manager(args, handler) -> int:
    from src.cli.commands.train import quiet_ultralytics
    from src.training.models import ModelManager
    quiet_ultralytics()     # before ultralytics is imported: stdout carries our output only
    with Project.open(args.project, create=False) as project:
        return handler(args, ModelManager(project))


# -- verbs -----------------------------------------------------------------------------------

def _list(args, mm) -> int:
    mm.sweep_staging()          # what a killed import or delete left behind
    rows = mm.list(args.task)
    if args.json:
        print(json.dumps([_summary(mm, v) for v in rows], indent=2))
        return 0
    if not rows:
        print("no model versions yet (train one: python main.py train CONFIG --dataset NAME)")
    for v in rows:
        flags = ("*" if v.is_active else " ") + (" " if mm.is_trusted(v) else "!")
        print(f"{flags} {v.id:>4}  {v.task:<15}  {v.display_name:<44}  "
              f"{v.name}:v{v.version}  {v.created_at}")
    if any(not mm.is_trusted(v) for v in rows):
        print("* active   ! not trusted (imported): `models trust ID` before using it")
    elif rows:
        print("* active")
    return 0


def _show(args, mm) -> int:
    v = mm.get(args.ref)
    info = {**_summary(mm, v), "description": v.description, "metrics": v.metrics,
            "dataset": v.dataset, "run_id": v.run_id, "lineage": v.lineage,
            "files": [{"role": f.role, "path": str(mm.path_of(f)), "sha256": f.sha256,
                       "size_bytes": f.size_bytes} for f in v.files]}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("id", "display_name", "task", "model_type", "active", "trusted", "origin",
                "series", "created_at", "description", "run_id", "parent_id"):
        print(f"{key + ':':<14}{info[key]}")
    if v.task != "sam_adapter":              # an adapter of SAM's decoder has no classes
        print(f"{'classes:':<14}{', '.join(v.classes) or '(unknown until trusted)'}")
    print(f"{'dataset:':<14}{_dataset_words(v.dataset)}")
    print(f"{'lineage:':<14}" + (" ← ".join(e.get("display_name") or "?" for e in v.lineage)
                                 or "(trained from a base model)"))
    for key, value in sorted(v.metrics.items()):
        print(f"  {key:<28}{value:.4f}" if isinstance(value, float) else f"  {key:<28}{value}")
    for f in info["files"]:
        print(f"  {f['role']:<22}{f['sha256'][:16]}…  {f['size_bytes']:>10}  {f['path']}")
    return 0


def _activate(args, mm) -> int:
    v = mm.activate(args.ref)
    print(f"active {v.task} model: {v.id} {v.display_name}")
    return 0


def _rename(args, mm) -> int:
    v = mm.rename(args.ref, args.name)
    print(f"version {v.id} is now named {v.display_name}")
    return 0


def _describe(args, mm) -> int:
    v = mm.describe(args.ref, args.text)
    print(f"version {v.id}: description set")
    return 0


def _delete(args, mm) -> int:
    v = mm.delete(args.ref, force=args.force)
    print(f"deleted version {v.id} {v.display_name} and its files")
    return 0


def _trust(args, mm) -> int:
    from pathlib import Path
    path = Path(args.ref).expanduser()
    if not args.ref.isdigit() and path.is_file():
        from src.training import trust
        sha = trust.trust_file(mm.conn, path)
        print(f"trusted {path} (sha256 {sha[:16]}…) in this project")
        return 0
    v = mm.trust(args.ref)
    print(f"version {v.id} {v.display_name} is trusted ({len(v.files)} files recorded)")
    return 0


def _import(args, mm) -> int:
    from pathlib import Path

    from src.training.models.bundle import import_model
    v = import_model(mm, Path(args.file), task=args.task, name=args.name, trusted=args.trust)
    state = "trusted" if mm.is_trusted(v) else \
        f"not trusted: check where it comes from, then `models trust {v.id}`"
    parent = f", fine-tuned from version {v.parent_id}" if v.parent_id else ""
    print(f"imported as version {v.id} {v.display_name} ({v.task}{parent}); {state}")
    return 0


def _export(args, mm) -> int:
    from pathlib import Path

    from src.training.models.export import export_version
    with contextlib.redirect_stdout(sys.stderr):     # ultralytics' progress output
        out = export_version(mm, mm.get(args.ref), args.format,
                             Path(args.out) if args.out else None, args.imgsz)
    print(f"wrote {out}")
    return 0


def _compare(args, mm) -> int:
    from src.training.models.compare import compare_versions
    with contextlib.redirect_stdout(sys.stderr):     # ultralytics' progress bars
        result = compare_versions(mm, args.refs, dataset=args.dataset, split=args.split,
                                  device=args.device)
    if args.json:
        print(json.dumps(_comparison_json(result), indent=2))
    else:
        sys.stdout.write(comparison_table(result))
    return 0


# -- formatting ------------------------------------------------------------------------------

def _summary(mm, v) -> dict:
    return {"id": v.id, "display_name": v.display_name, "task": v.task,
            "model_type": v.model_type, "active": v.is_active, "trusted": mm.is_trusted(v),
            "origin": v.origin, "series": f"{v.name}:v{v.version}", "classes": v.classes,
            "created_at": v.created_at, "parent_id": v.parent_id}


def _dataset_words(d: dict) -> str:
    if d.get("learned_from"):                # a SAM adapter: the object it learned from
        return f"learned from {d['learned_from']}"
    if d.get("name"):
        return f"{d['name']} v{d.get('version')} (hash {str(d.get('hash'))[:12]})"
    return d.get("imported_from") and f"imported from {d['imported_from']}" or d.get("path") \
        or "(unknown)"


def _comparison_json(result) -> dict:
    return {"dataset": result.dataset, "split": result.split,
            "versions": [{"id": e.version.id, "display_name": e.version.display_name,
                          "metrics": e.metrics, "per_class": e.per_class,
                          "ms_per_image": e.ms_per_image, "images": e.images}
                         for e in result.evaluations]}


def comparison_table(result) -> str:
    """Metrics, then per-class rows, one column per version."""
    evs = result.evaluations
    width = max(12, *(len(str(e.version.id)) + 2 for e in evs))
    head = f"{'':<30}" + "".join(f"{'v' + str(e.version.id):>{width}}" for e in evs)
    lines = [f"re-evaluated on {result.dataset}, split {result.split} "
             f"({evs[0].images} images)", head]
    for e in evs:
        lines.append(f"  v{e.version.id} = {e.version.display_name}")
    keys = sorted({k for e in evs for k in e.metrics})
    for key in keys:
        lines.append(f"{key[:29]:<30}" + "".join(_cell(e.metrics.get(key), width) for e in evs))
    lines.append(f"{'ms per image':<30}" + "".join(_cell(e.ms_per_image, width, 2)
                                                  for e in evs))
    per_key = _per_class_key(evs)
    if per_key:
        lines.append(f"per class: {per_key}")
        for name in dict.fromkeys(n for e in evs for n in e.per_class):
            lines.append(f"  {name[:27]:<28}" + "".join(
                _cell(e.per_class.get(name, {}).get(per_key), width) for e in evs))
    return "\n".join(lines) + "\n"


def _per_class_key(evs) -> str | None:
    keys = {k for e in evs for row in e.per_class.values() for k in row}
    return next((k for k in ("mAP50-95", "f1", "recall") if k in keys), None)


def _cell(value, width: int, digits: int = 4) -> str:
    return f"{value:>{width}.{digits}f}" if isinstance(value, (int, float)) else \
        f"{'-':>{width}}"
