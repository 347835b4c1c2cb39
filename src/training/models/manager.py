"""ModelManager: find, list, activate, rename, delete and trust a project's model versions,
and hand out their files only after checking each one's sha256 (and trust, for pickles).

Qt-free: the CLI, the GUI and the predictor (`create_predictor`) all go through it.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from pathlib import Path

from src.db import model_versions as repo
from src.db.project import Project
from src.db.records import MODEL_TASKS, ModelFile, ModelVersion
from src.errors import ModelError, ModelIntegrityError, UntrustedModelError
from src.training import trust

_REF_HINT = "see `python main.py models list` for ids and names"
# LIT-LoRA adapters of SAM's mask decoder (sam_adapter.py): versions with their own active
# one, never a predictor's; MODEL_TASKS stays the tasks a predictor or trainer can load.
SAM_ADAPTER_TASK = "sam_adapter"
KNOWN_TASKS = (*MODEL_TASKS, SAM_ADAPTER_TASK)


class ModelManager:
    """The model versions of one project. `conn` defaults to the project's own connection."""

    def __init__(self, project: Project, conn: sqlite3.Connection | None = None) -> None:
        self.project = project
        self.conn = conn or project.conn

    # -- finding -------------------------------------------------------------------------

    def list(self, task: str | None = None) -> list[ModelVersion]:
        """Versions, newest first; only `task`'s when given."""
        if task is not None:
            check_task(task)
        return repo.list_model_versions(self.conn, task, newest_first=True)

    def get(self, ref: str | int, task: str | None = None) -> ModelVersion:
        """A version by id ('12', 'model:12'), 'active' (with `task`), 'active:<task>',
        its readable name, or NAME:vN; ModelError when there is none."""
        found = self._find(str(ref).strip(), task)
        if found is None:
            raise ModelError(f"no model version {ref!r} in this project", field="model",
                             hint=_REF_HINT)
        return found

    def _find(self, ref: str, task: str | None) -> ModelVersion | None:
        if ref.startswith("model:"):
            ref = ref[len("model:"):]
        if ref.isdigit():
            return repo.get_model_version(self.conn, int(ref)) if len(ref) < 19 else None
        if ref == "active" or ref.startswith("active:"):
            return self._active_ref(ref, task)
        named = repo.get_by_display_name(self.conn, ref)
        if named is not None:
            return named
        name, _, version = ref.rpartition(":v")
        if name and version.isdigit() and len(version) < 19:
            rows = [m for m in repo.get_by_series(self.conn, name, int(version))
                    if task is None or m.task == task]
            if len(rows) > 1:
                raise ModelError(f"{ref!r} names versions of several tasks "
                                 f"({', '.join(m.task for m in rows)})", field="model",
                                 hint="use the version id or pass the task")
            return rows[0] if rows else None
        return None

    def _active_ref(self, ref: str, task: str | None) -> ModelVersion | None:
        task = ref.partition(":")[2] or task
        if not task:
            raise ModelError("'active' needs a task", field="model",
                             hint=f"use active:<task>, one of {', '.join(KNOWN_TASKS)}")
        check_task(task)
        found = repo.active_model(self.conn, task)
        if found is None:
            raise ModelError(f"no active {task} model in this project", field="model",
                             hint=f"activate one with `python main.py models activate ID`; "
                                  f"{_REF_HINT}")
        return found

    def active(self, task: str) -> ModelVersion | None:
        check_task(task)
        return repo.active_model(self.conn, task)

    # -- files, verified -----------------------------------------------------------------

    def path_of(self, f: ModelFile) -> Path:
        return self.project.abspath(f.path)

    def folder(self, version: ModelVersion) -> Path:
        """The version's own folder (models/<task>/<name>/v<N>/)."""
        path = self.project.abspath(version.path)
        return path if path.is_dir() else path.parent

    def verified_files(self, version: ModelVersion) -> dict[str, Path]:
        """{role: path} of every file, each checked against its recorded sha256; pickles
        also checked against the trusted set. ModelIntegrityError / UntrustedModelError."""
        if not version.files:
            raise ModelIntegrityError(
                f"model version {version.id} ({version.display_name}) has no recorded sha256 "
                f"for its files, so they cannot be verified", path=version.path,
                hint=f"if the files are yours, record them with `python main.py models trust "
                     f"{version.id}`")
        out = {}
        for f in version.files:
            path = self.path_of(f)
            trust.verify_sha256(path, f.sha256)
            if trust.needs_trust(path) and repo.trusted_origin(self.conn, f.sha256) is None:
                raise UntrustedModelError(
                    f"model version {version.id} ({version.display_name}) was imported and "
                    f"is not trusted yet; its {f.role} file would run code when loaded",
                    path=path, hint=f"if you know where it comes from: `python main.py models "
                                    f"trust {version.id}`")
            out[f.role] = path
        return out

    def weights_path(self, version: ModelVersion) -> Path:
        """The weights file of a model that predicts or trains, verified (see
        `verified_files`); a SAM adapter is refused (it only adapts SAM for tracking)."""
        if version.task == SAM_ADAPTER_TASK:
            raise ModelError(f"version {version.id} ({version.display_name}) is a SAM adapter: "
                             f"it adapts SAM's mask decoder for tracking and cannot predict, "
                             f"train or be compared", field="model",
                             hint=f"use it with `python main.py track ... --adapter "
                                  f"{version.id}`; pick a detect/segment/classify version here")
        files = self.verified_files(version)
        if "weights" not in files:
            raise ModelIntegrityError(f"model version {version.id} has no weights file "
                                      f"recorded", path=version.path, hint=_REF_HINT)
        return files["weights"]

    def is_trusted(self, version: ModelVersion) -> bool:
        return bool(version.files) and all(
            repo.trusted_origin(self.conn, f.sha256) is not None
            for f in version.files if trust.needs_trust(f.path))

    # -- changing ------------------------------------------------------------------------

    def activate(self, ref: str | int, task: str | None = None) -> ModelVersion:
        version = self.get(ref, task)
        return repo.set_active(self.conn, version.id)

    def rename(self, ref: str | int, new_name: str) -> ModelVersion:
        version = self.get(ref)
        new_name = check_display_name(new_name)
        other = repo.get_by_display_name(self.conn, new_name)
        if other is not None and other.id != version.id:
            raise ModelError(f"the name {new_name!r} is taken by version {other.id}",
                             field="name", hint="choose another name")
        return repo.update_text(self.conn, version.id, display_name=new_name)

    def describe(self, ref: str | int, text: str) -> ModelVersion:
        if "\x00" in text or len(text) > 10_000:
            raise ModelError("a description is at most 10000 characters, without NUL",
                             field="description")
        return repo.update_text(self.conn, self.get(ref).id, description=text)

    def trust(self, ref: str | int) -> ModelVersion:
        """The user vouches for a version's files as they are now (imported or legacy)."""
        version = self.get(ref)
        if not version.files:
            repo.replace_files(self.conn, version.id, self._legacy_files(version))
            version = self.get(version.id)
        for f in version.files:
            trust.verify_sha256(self.path_of(f), f.sha256)
            repo.add_trusted(self.conn, f.sha256, "user", str(self.path_of(f)))
        if version.model_type == "yolo" and not version.classes:
            # a bare imported .pt: its class names could only be read once it was trusted
            from src.training.models.bundle import read_yolo_classes
            classes, _task = read_yolo_classes(self.conn, self.weights_path(version))
            repo.update_classes(self.conn, version.id, classes)
        return self.get(version.id)

    def _legacy_files(self, version: ModelVersion) -> list[ModelFile]:
        """A version registered before files were recorded: its own folder's files, or only
        its weights file when it does not live in a folder of its own under models/."""
        if self._own_folder(version) is not None:
            return scan_files(self.project, self.folder(version))
        weights = self.project.abspath(version.path)
        if weights.is_dir():
            weights = next((weights / n for n in ("model.pt", "model.safetensors")
                            if (weights / n).is_file()), weights / "model.pt")
        if not weights.is_file():
            raise ModelIntegrityError("the version's weights file is missing", path=weights)
        return [ModelFile(role="weights", path=self.project.relpath(weights),
                          sha256=trust.sha256_file(weights),
                          size_bytes=weights.stat().st_size)]

    def delete(self, ref: str | int, *, force: bool = False) -> ModelVersion:
        """Delete a version's row and its folder together; runs and datasets keep theirs."""
        version = self.get(ref)
        if version.is_active and not force:
            raise ModelError(f"version {version.id} ({version.display_name}) is the active "
                             f"{version.task} model", field="model",
                             hint="activate another one first, or pass --force")
        folder = self._own_folder(version)
        trash = None
        if folder is not None and folder.is_dir():
            trash = folder.with_name(f".deleting-{folder.name}-{uuid.uuid4().hex[:8]}")
            os.replace(folder, trash)
        try:
            repo.delete_model_version(self.conn, version.id)
        except BaseException:
            if trash is not None:
                os.replace(trash, folder)
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return version

    def sweep_staging(self, max_age_s: float = 3600.0) -> list[Path]:
        """Remove what a killed import, registration or delete left under models/<task>/
        <name>/: '.import-*', '.v<N>.*' staging and '.deleting-*' folders older than
        `max_age_s` (a younger one may belong to a process still at work)."""
        import time

        removed, now = [], time.time()
        for pattern in (".import-*", ".v[0-9]*.*", ".deleting-*"):
            for path in self.project.models_dir.glob(f"*/*/{pattern}"):
                if path.is_dir() and not path.is_symlink() and \
                        now - path.stat().st_mtime > max_age_s:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        return removed

    def _own_folder(self, version: ModelVersion) -> Path | None:
        """The folder to remove with the version: only one under models/<task>/<name>/."""
        folder = self.folder(version).resolve()
        root = self.project.models_dir.resolve()
        try:
            depth = len(folder.relative_to(root).parts)
        except ValueError:
            return None
        return folder if depth >= 3 else None


def check_task(task: str) -> str:
    if task not in KNOWN_TASKS:
        raise ModelError(f"unknown task {task!r}", field="task",
                         hint=f"use one of {', '.join(KNOWN_TASKS)}")
    return task


def check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name) or name.isdigit() \
            or name.startswith(("active", "model:")):
        raise ModelError(f"invalid model name {name[:60]!r}", field="name",
                         hint="1-200 printable characters, not only digits, not starting "
                              "with 'active' or 'model:'")
    return name


def scan_files(project: Project, folder: Path) -> list[ModelFile]:
    """ModelFile rows (role, path, sha256, size) for what a version folder holds."""
    files = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        files.append(ModelFile(role=file_role(rel), path=project.relpath(path),
                               sha256=trust.sha256_file(path),
                               size_bytes=path.stat().st_size))
    return files


def file_role(relative: str) -> str:
    """'model.pt'/'model.safetensors' → weights; metadata.json; model_config.json;
    adapters/x → adapter/x; anything else → file/<name>."""
    if relative in ("model.pt", "model.safetensors"):
        return "weights"
    if relative in ("metadata.json", "model_config.json"):
        return relative.removesuffix(".json")
    if relative.startswith("adapters/"):
        return "adapter/" + relative[len("adapters/"):]
    return "file/" + relative
