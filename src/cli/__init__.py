"""`python main.py [--project DIR] [COMMAND ...]` — no command opens the GUI.

Each module in src/cli/commands/ exposes `register(subparsers)`, which adds its
sub-commands with `set_defaults(handler=...)`; a handler takes the parsed args and
returns an exit code. User errors (LabelLoopError) exit 2 with one line on stderr;
anything else is an internal error: traceback, exit 1. A few errors of the user's machine
rather than of LabelLoop (a full disk, a name too long for the file system, a folder the
user may not write) also exit 2 with one line, as a safety net behind the typed errors.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import pkgutil
import sqlite3
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
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:        # `info --json | head -c 100`: the reader has had enough
        _silence_stdout()
        return 0
    except OSError as exc:
        if exc.errno not in _MACHINE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", _MACHINE_ERRNOS[exc.errno])
    except sqlite3.OperationalError as exc:
        if "disk is full" not in str(exc):
            raise
        return _fail(f"the project database cannot grow ({exc})", _MACHINE_ERRNOS[errno.ENOSPC])


# OS errors the user can fix on their machine, with what to do.
_MACHINE_ERRNOS = {
    errno.ENOSPC: "free some disk space, then retry",
    errno.EDQUOT: "free some disk space (quota), then retry",
    errno.ENAMETOOLONG: "use a shorter name or path",
    errno.EACCES: "check the permissions of that file or folder",
    errno.EPERM: "check the permissions of that file or folder",
    errno.EROFS: "choose a folder on a writable disk",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another path",
}


def _fail(message: str, hint: str | None = None) -> int:
    """Print one line on stderr (a message can never spread over several) and return 2."""
    text = f"error: {message}" + (f" — {hint}" if hint else "")
    print(" ".join(text.split("\n")).replace("\r", " "), file=sys.stderr)
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit raises no second error."""
    with contextlib.suppress(OSError, ValueError):   # no stdout to silence
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
