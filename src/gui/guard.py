"""Nothing a user does can kill the app.

PyQt6 aborts the process when an exception leaves a slot, and a signal passes its arguments
to the slot (`clicked` passes `checked`). So: slots drop the signal arguments they do not
declare, user-fixable errors (ours, SQLite's, the disk's) become an error dialog, and any
other exception, in any thread, is logged to `<project>/logs/` and shown with its details
while the app keeps running.
"""
from __future__ import annotations

import functools
import inspect
import sqlite3
import sys
import threading
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QWidget

from src.errors import LabelLoopError
from src.gui import dialogs

# Errors a user can act on: shown with their message, not as a crash.
USER_ERRORS = (LabelLoopError, sqlite3.Error, OSError)
LOG_NAME = "errors.log"


def positional_capacity(func: Callable) -> int | None:
    """How many positional arguments `func` accepts (None: any number)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):       # a builtin without a signature: pass everything
        return None
    count = 0
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def drops_extra_args(func: Callable) -> Callable:
    """`func`, callable with trailing positional arguments it does not declare (those a
    signal sends along, like `clicked`'s `checked`), which are dropped."""
    capacity = positional_capacity(func)
    if capacity is None:
        return func

    @functools.wraps(func)
    def call(*args, **kwargs):
        return func(*args[:capacity], **kwargs)
    return call


def reports_errors(method: Callable) -> Callable:
    """Decorate a slot of an object with a `session`: extra signal arguments are dropped, and
    a LabelLoopError, SQLite error or OSError becomes an error dialog instead of escaping."""
    capacity = positional_capacity(method)          # counts `self`

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if capacity is not None:
            args = args[:capacity - 1]
        try:
            return method(self, *args, **kwargs)
        except USER_ERRORS as exc:
            report_user_error(self, exc)
            return None
    return wrapper


def report_user_error(owner, exc: BaseException) -> None:
    """Show `exc` through the owner's session (its window shows the dialog), or directly."""
    session = getattr(owner, "session", None)
    if session is not None:
        session.report_error(exc)
        return
    dialogs.show_error(owner if isinstance(owner, QWidget) else None, exc)


def write_error_log(folder: Path, text: str) -> Path | None:
    """Append a timestamped traceback to `folder`/errors.log; None when even that fails
    (the disk may be what is failing)."""
    path = folder / LOG_NAME
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"--- {stamp}\n{text}\n")
    except OSError:
        return None
    return path


class ErrorReporter(QObject):
    """The process-wide hook for uncaught exceptions (sys.excepthook, threading.excepthook;
    PyQt routes exceptions leaving a slot, in any QThread, through sys.excepthook).

    It logs the traceback at once, in the thread that raised, then hands it to the GUI thread
    (a queued signal, as this object lives there), which calls `on_error(summary, details,
    log_path)` to restore a consistent state and show the dialog.
    """
    caught = pyqtSignal(str, str, object)            # summary, traceback, log path or None

    def __init__(self, log_dir: Callable[[], Path], on_error: Callable[[str, str, object], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._log_dir = log_dir
        self._on_error = on_error
        self._lock = threading.Lock()
        self._previous = None
        self._handling = False
        self.caught.connect(self._on_caught)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def handle(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(details)
        with self._lock:
            log_path = write_error_log(self._log_dir(), details)
        summary = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
        self.caught.emit(summary, details, log_path)

    def _on_caught(self, summary: str, details: str, log_path) -> None:
        if self._handling:      # an error while recovering from one: logged, not looped on
            return
        self._handling = True
        try:
            self._on_error(summary, details, log_path)
        except Exception:       # noqa: BLE001 — the last line of defence must not raise
            text = traceback.format_exc()
            sys.stderr.write(text)
            write_error_log(self._log_dir(), text)
        finally:
            self._handling = False
