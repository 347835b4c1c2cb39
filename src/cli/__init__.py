"""`python main.py [--project DIR] [COMMAND ...]` — no command opens the GUI.

Each module in src/cli/commands/ exposes `register(subparsers)`, which adds its
sub-commands with `set_defaults(handler=...)`; a handler takes the parsed args and
returns an exit code. User errors (LabelLoopError) exit 2 with one line on stderr;
anything else is an internal error: traceback, exit 1.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from src.db.project import default_project_dir
from src.errors import LabelLoopError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelloop", description="LabelLoop: annotate video and images, build datasets, train detectors and classifiers.")
    parser.add_argument("--project", type=Path, default=None,
                        help="project folder (default: $LABELLOOP_PROJECT or ./workspace)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from src.cli import commands
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"src.cli.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.project is None:
        args.project = default_project_dir()
    if not getattr(args, "handler", None):
        from src.gui.platform_check import display_problem  # imports no Qt
        problem = display_problem()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        from src.gui.app import run_gui  # Qt is imported only when the GUI opens
        return run_gui(args.project)
    try:
        return int(args.handler(args) or 0)
    except LabelLoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
