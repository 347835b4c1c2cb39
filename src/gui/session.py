"""The open project as the GUI sees it: store calls, the undo stack and change signals.

Widgets never call src/db themselves for edits; they call a ProjectSession method, which
writes to the store at once (autosave) and pushes an undoable command.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QUndoStack

from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import frames as frame_repo
from src.db import proposals as proposal_repo
from src.db.connection import transaction
from src.db.project import Project
from src.data.capture import capture_array
from src.db.records import Annotation, Frame, LabelClass, MediaSource
from src.errors import LabelLoopError
from src.gui import commands


class ProjectSession(QObject):
    annotations_changed = pyqtSignal()
    classes_changed = pyqtSignal()
    frames_changed = pyqtSignal()
    exclusions_changed = pyqtSignal(list)      # frame ids marked/unmarked "exclude from datasets"
    current_class_changed = pyqtSignal(int)
    error = pyqtSignal(object)
    replayed = pyqtSignal(int, int, list)      # an undo/redo changed: source id, frame index, shapes

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.undo_stack = QUndoStack(self)
        self.current_class_id: int | None = None
        self._classes: list[LabelClass] = []
        self.classes_changed.connect(self._reload_classes)
        self._reload_classes()
        shutil.rmtree(self.trash_dir, ignore_errors=True)  # undo history starts empty

    @property
    def conn(self) -> sqlite3.Connection:
        return self.project.conn

    def report_error(self, exc: BaseException) -> None:
        self.error.emit(exc)

    def reload_from_store(self) -> None:
        """After an unexpected error: drop any half-done transaction and let every view
        re-read the store, so what the user sees is what is saved."""
        if self.conn.in_transaction:
            self.conn.rollback()
        self.classes_changed.emit()
        self.annotations_changed.emit()
        self.frames_changed.emit()

    # ---- classes ------------------------------------------------------------------------
    def classes(self, kind: str | None = None) -> list[LabelClass]:
        """Every class, or those of one kind: 'object' (shapes, keys 1-9) or 'tag'."""
        return [c for c in self._classes if kind is None or c.kind == kind]

    def class_by_id(self, class_id: int) -> LabelClass | None:
        return next((c for c in self._classes if c.id == class_id), None)

    def _reload_classes(self) -> None:
        self._classes = class_repo.list_classes(self.conn)
        objects = self.classes("object")
        if self.current_class_id not in {c.id for c in objects}:
            self.current_class_id = objects[0].id if objects else None
            self.current_class_changed.emit(self.current_class_id or 0)

    def set_current_class(self, class_id: int) -> None:
        """The object class new shapes get (frame tags are toggled, never current)."""
        cls = self.class_by_id(class_id)
        if cls is not None and cls.kind == "object" and class_id != self.current_class_id:
            self.current_class_id = class_id
            self.current_class_changed.emit(class_id)

    def add_class(self, name: str, color: str | None = None, kind: str = "object") -> LabelClass:
        cls = class_repo.add_class(self.conn, name, color, kind=kind)
        self.undo_stack.push(commands.AddClass(self, cls))
        self.classes_changed.emit()
        self.set_current_class(cls.id)
        return cls

    def edit_class(self, class_id: int, *, name: str | None = None,
                   color: str | None = None) -> LabelClass:
        old = class_repo.get_class(self.conn, class_id)
        new = class_repo.update_class(self.conn, class_id, name=name, color=color)
        text = f"Rename class '{old.name}'" if name is not None else f"Recolour class '{old.name}'"
        self.undo_stack.push(commands.EditClass(self, class_id, (old.name, old.color),
                                                (new.name, new.color), text))
        self.classes_changed.emit()
        return new

    def set_class_kind(self, class_id: int, kind: str) -> LabelClass:
        """Make a class a frame tag ('tag') or an object class ('object'); refused while
        annotations of the other kind use it."""
        old = class_repo.get_class(self.conn, class_id)
        new = class_repo.set_kind(self.conn, class_id, kind)
        what = "a frame tag" if kind == "tag" else "an object class"
        self.undo_stack.push(commands.SetClassKind(self, class_id, old.kind, kind,
                                                   f"Make '{old.name}' {what}"))
        self.classes_changed.emit()
        return new

    def class_counts(self) -> dict[int, int]:
        return class_repo.annotation_counts(self.conn)

    def class_usage(self, class_id: int) -> int:
        return class_repo.annotation_counts(self.conn).get(class_id, 0)

    def delete_class(self, class_id: int, reassign_to: int | None = None) -> None:
        """Delete a class (its annotations moved to `reassign_to`); undo brings the class back
        under its id and gives the moved annotations back to it."""
        cls = class_repo.get_class(self.conn, class_id)
        moved = ann_repo.list_annotations(self.conn, class_id=class_id)
        class_repo.delete_class(self.conn, class_id, reassign_to=reassign_to)
        self.undo_stack.push(commands.DeleteClass(self, cls, reassign_to, moved))
        self.classes_changed.emit()
        self.annotations_changed.emit()
        self.frames_changed.emit()

    # ---- annotations --------------------------------------------------------------------
    def annotations(self, frame_id: int) -> list[Annotation]:
        return ann_repo.list_annotations(self.conn, frame_id)

    def add_shape(self, frame_id: int, kind: str, geometry, class_id: int | None = None
                  ) -> Annotation:
        class_id = class_id or self.current_class_id
        if class_id is None:
            raise LabelLoopError("there is no class to give this shape", field="class",
                                 hint="add a class in the class panel first")
        ann = ann_repo.add_annotation(self.conn, Annotation(frame_id, class_id, kind, geometry))
        self.undo_stack.push(commands.AddAnnotations(self, [ann], f"Add {self.describe([ann])}"))
        self.annotations_changed.emit()
        return ann

    def require_class(self) -> int:
        """The class a new shape gets; refused (before anything is written) when there is none."""
        if self.current_class_id is None:
            raise LabelLoopError("there is no class to give this shape", field="class",
                                 hint="add a class in the class panel first")
        return self.current_class_id

    def describe(self, anns: list[Annotation]) -> str:
        """How an undo entry names shapes: "box 'car'", or "3 shapes"."""
        if len(anns) != 1:
            return f"{len(anns)} shapes"
        cls = self.class_by_id(anns[0].class_id)
        return f"{anns[0].kind} '{cls.name if cls else anns[0].class_id}'"

    def delete_annotations(self, ids: list[int], text: str = "Delete shape") -> None:
        anns = ann_repo.get_annotations(self.conn, ids)
        if not anns:
            return
        if text in ("Delete shape", "Delete shapes"):
            text = f"Delete {self.describe(anns)}"
        with transaction(self.conn):     # a deleted proposal is a correction of its model
            ann_repo.delete_annotations(self.conn, [a.id for a in anns])
            proposal_repo.add_corrections(self.conn, proposal_repo.corrections_for_deletion(anns))
        self.undo_stack.push(commands.DeleteAnnotations(self, anns, text))
        self.annotations_changed.emit()

    def update_annotations(self, changed: list[Annotation], text: str) -> None:
        before = ann_repo.get_annotations(self.conn, [a.id for a in changed])
        if not before:
            return
        prior = {a.id: a for a in before}
        with transaction(self.conn):     # what the user changed on a proposal is recorded
            for ann in changed:
                ann_repo.update_annotation(self.conn, ann)
                if ann.id in prior:
                    proposal_repo.add_corrections(
                        self.conn, proposal_repo.corrections_for_edit(prior[ann.id], ann))
        self.undo_stack.push(commands.UpdateAnnotations(self, before, changed, text))
        self.annotations_changed.emit()

    def set_geometry(self, ann_id: int, geometry) -> None:
        ann = ann_repo.get_annotation(self.conn, ann_id)
        if ann is not None and ann.geometry != geometry:
            verb = "Move" if commands.is_translation(ann.geometry, geometry) else (
                "Resize" if ann.kind == "box" else "Edit")
            ann.geometry = geometry
            self.update_annotations([ann], f"{verb} {self.describe([ann])}")

    def set_class(self, ids: list[int], class_id: int) -> None:
        self._check_class_kind(class_id, "object")
        anns = [a for a in ann_repo.get_annotations(self.conn, ids) if a.class_id != class_id]
        text = f"Change class of {self.describe(anns)}"
        for ann in anns:
            ann.class_id = class_id
        if anns:
            cls = self.class_by_id(class_id)
            self.update_annotations(anns, f"{text} to '{cls.name if cls else class_id}'")

    def accept_proposals(self, ids: list[int]) -> None:
        anns = [a for a in ann_repo.get_annotations(self.conn, ids) if a.status == "proposed"]
        for ann in anns:
            ann.status = "accepted"
        if anns:
            self.update_annotations(anns, "Accept proposal" if len(anns) == 1 else "Accept all")

    def reject_proposals(self, ids: list[int]) -> None:
        anns = [a for a in ann_repo.get_annotations(self.conn, ids) if a.status == "proposed"]
        if anns:
            self.delete_annotations([a.id for a in anns],
                                    "Reject proposal" if len(anns) == 1 else "Reject all")

    def _check_class_kind(self, class_id: int, kind: str) -> None:
        cls = self.class_by_id(class_id)
        if cls is not None:
            class_repo.check_kind(cls, kind)

    def toggle_tag(self, frame_id: int, class_id: int) -> bool:
        """Add the frame tag `class_id`, or remove it if present; returns whether it is set now."""
        self._check_class_kind(class_id, "tag")
        tags = [a for a in self.annotations(frame_id) if a.kind == "tag" and a.class_id == class_id]
        if tags:
            self.delete_annotations([a.id for a in tags], "Remove tag")
            return False
        ann = ann_repo.add_annotation(self.conn, Annotation(frame_id, class_id, "tag", None))
        self.undo_stack.push(commands.AddAnnotations(self, [ann], "Add tag"))
        self.annotations_changed.emit()
        return True

    # ---- frames -------------------------------------------------------------------------
    def capture(self, source: MediaSource, index: int, image, timestamp_s: float | None) -> Frame:
        """Capture the decoded frame on screen (undoable); an already captured frame is returned."""
        frame = self.frame_at(source.id, index)
        if frame is not None:
            return frame
        frame = capture_array(self.project, source, index, image, timestamp_s=timestamp_s)
        self.undo_stack.push(commands.CaptureFrame(self, frame))
        self.frames_changed.emit()
        return frame

    def set_excluded(self, frame_ids: list[int], excluded: bool) -> None:
        """Mark frames "exclude from datasets" (or clear the mark), undoable."""
        from src.db import dataset_exclusions
        before = dataset_exclusions.excluded_frame_ids(self.conn)
        dataset_exclusions.set_excluded(self.conn, frame_ids, excluded)
        self.undo_stack.push(commands.SetExcluded(self, frame_ids, excluded, before))
        self.exclusions_changed.emit(list(frame_ids))

    def frame_at(self, source_id: int, index: int) -> Frame | None:
        return frame_repo.get_frame_at(self.conn, source_id, index)

    def frame_summaries(self, *, class_id: int | None = None, unannotated_only: bool = False,
                        limit: int = -1, offset: int = 0) -> list[frame_repo.FrameSummary]:
        return frame_repo.list_frame_summaries(self.conn, class_id=class_id,
                                               unannotated_only=unannotated_only,
                                               limit=limit, offset=offset)

    def neighbour_annotated(self, source_id: int, index: int, direction: int) -> Frame | None:
        """The next (direction 1) or previous (-1) captured frame of the source with annotations."""
        frames = [s.frame for s in frame_repo.list_frame_summaries(self.conn, source_id=source_id)
                  if s.shape_count or s.class_ids]
        if direction > 0:
            return next((f for f in frames if f.frame_index > index), None)
        return next((f for f in reversed(frames) if f.frame_index < index), None)

    def delete_frames(self, frame_ids: list[int]) -> None:
        """Frames and their annotations go; their images wait in .trash/ so undo can bring
        everything back under the same ids (the trash is emptied when a project opens)."""
        frames = [f for f in (frame_repo.get_frame(self.conn, i) for i in frame_ids) if f]
        anns = [a for f in frames for a in ann_repo.list_annotations(self.conn, f.id)]
        frame_repo.delete_frames(self.conn, [f.id for f in frames])
        self.move_frame_images(frames, to_trash=True)
        self.undo_stack.push(commands.DeleteFrames(self, frames, anns))
        self.frames_changed.emit()
        self.annotations_changed.emit()

    @property
    def trash_dir(self) -> Path:
        return self.project.root / ".trash"

    def move_frame_images(self, frames: list[Frame], *, to_trash: bool) -> None:
        """Move frame images into the trash, or back from it, keeping their relative paths."""
        for frame in frames:
            path = self.project.abspath(frame.image_path)
            if self.project.root not in path.resolve().parents:
                continue  # never move files outside the project
            trashed = self.trash_dir / frame.image_path
            src, dst = (path, trashed) if to_trash else (trashed, path)
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
