"""Route user-fixable errors raised in a slot to the session's error signal (a dialog)."""
from __future__ import annotations

import functools
import sqlite3

from src.errors import LabelLoopError


def reports_errors(method):
    """Decorate a slot of an object with a `session`: LabelLoopError and SQLite errors become
    an error dialog instead of escaping into Qt (which would abort the app)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (LabelLoopError, sqlite3.Error) as exc:
            if self.session is None:
                raise
            self.session.report_error(exc)
            return None
    return wrapper
