"""A LabelLoop project: a folder holding project.db and the files the store points to."""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from src.db import leftovers
from src.db.connection import connect
from src.errors import ProjectError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROJECT = "workspace"
DB_NAME = "project.db"


def default_project_dir() -> Path:
    """--project wins over LABELLOOP_PROJECT, which wins over ./workspace."""
    return Path(os.environ.get("LABELLOOP_PROJECT") or DEFAULT_PROJECT)


def default_models_dir() -> Path:
    """Trained models are versioned under the top-level models/ folder unless overridden."""
    return Path(os.environ.get("LABELLOOP_MODELS") or REPO_ROOT / "models")


@dataclass
class Project:
    """An open project. `conn` belongs to the thread that opened it; other threads
    (GUI workers) call `connect()` for a connection of their own."""
    root: Path
    conn: sqlite3.Connection
    models_dir: Path = field(default_factory=default_models_dir)

    @classmethod
    def open(cls, root: str | Path, *, create: bool = True) -> "Project":
        root = Path(root).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise ProjectError("a project must be a folder, this is a file", path=root,
                               hint="pass the folder that holds project.db")
        if not root.exists():
            if not create:
                raise ProjectError("project folder does not exist", path=root)
            try:
                root.mkdir(parents=True, exist_ok=True)  # another process may race us
            except OSError as exc:
                raise ProjectError(f"cannot create the project folder ({exc.strerror})",
                                   path=root, hint="choose a folder you can write to") from exc
        project = cls(root=root, conn=connect(root / DB_NAME, create=create))
        try:
            leftovers.sweep(root, project.conn)  # what a killed process left behind
        except BaseException:
            project.close()
            raise
        return project

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def base_weights_dir(self) -> Path:
        return self.models_dir / "base"

    def connect(self) -> sqlite3.Connection:
        """A new connection to this project's store (one per thread)."""
        return connect(self.db_path, create=False)

    def abspath(self, stored: str) -> Path:
        """A path as stored in the DB (relative to the project when inside it) made absolute."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    def relpath(self, path: str | Path) -> str:
        """How to store `path`: relative when inside the project, so projects can be moved."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
