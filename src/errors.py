"""Typed, user-facing errors.

Every error a user can fix carries what was wrong (the file, field or value) and a hint
on what to do. The CLI prints them on one line and exits 2; the GUI shows them in a
dialog. Anything else is an internal error (exit 1).
"""
from __future__ import annotations

from pathlib import Path


class LabelLoopError(Exception):
    """Base class of errors caused by user input or the user's files."""

    def __init__(self, message: str, *, path: str | Path | None = None,
                 field: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.field = field
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.field:
            where.append(f"field '{self.field}'")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class ProjectError(LabelLoopError):
    """The project folder or its database cannot be used."""


class MediaError(LabelLoopError):
    """A video, image or image folder cannot be read."""


class AnnotationError(LabelLoopError):
    """An annotation or label class is invalid."""


class DatasetError(LabelLoopError):
    """A dataset cannot be built, imported or exported as asked."""


class ConfigError(LabelLoopError):
    """A training configuration is invalid."""


class TrainingError(LabelLoopError):
    """A training run cannot start or continue for a reason the user can act on."""


class StorageError(LabelLoopError):
    """A file or the project database could not be written (the disk is full)."""


class ModelError(LabelLoopError):
    """A model version cannot be found, used, imported or exported as asked."""


class ModelIntegrityError(ModelError):
    """A model file is missing or its content differs from the sha256 recorded for it."""


class UntrustedModelError(ModelError):
    """A file that can run code when loaded (a pickle) was not written by LabelLoop here
    and has not been trusted by the user."""
