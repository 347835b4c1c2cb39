"""Undoable edits. Each edit is written to the store *before* it is pushed (so a failing
write never reaches the stack); redo/undo replay it through the same repository calls."""
from __future__ import annotations

import sqlite3
from copy import deepcopy
from typing import TYPE_CHECKING

from PyQt6.QtGui import QUndoCommand

from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import dataset_exclusions
from src.db import frames as frame_repo
from src.db.connection import transaction
from src.db.records import Annotation, Frame, LabelClass
from src.errors import LabelLoopError

if TYPE_CHECKING:
    from src.gui.session import ProjectSession


class _StoreCommand(QUndoCommand):
    """Skips the first redo (the edit is already stored); a failing replay is reported and
    the command made obsolete instead of raising inside Qt. Subclasses define `_apply`
    (redo) and `_revert` (undo). `where` = (source id, frame index, annotation ids) is what
    the window shows after a replay, so the user sees what undo or redo changed."""

    def __init__(self, session: "ProjectSession", text: str,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(text, parent)
        self.session = session
        self._stored = True
        self.where: tuple[int, int, list[int]] | None = None

    def _locate(self, frame_id: int, ann_ids: list[int]) -> None:
        frame = frame_repo.get_frame(self.session.conn, frame_id)
        if frame is not None:
            self.where = (frame.source_id, frame.frame_index, [i for i in ann_ids if i])

    def redo(self) -> None:
        if self._stored:
            self._stored = False
            return
        self._replay(self._apply)

    def undo(self) -> None:
        self._replay(self._revert)

    def _replay(self, step) -> None:
        try:
            with transaction(self.session.conn):
                step()
        except (LabelLoopError, sqlite3.Error) as exc:
            self.setObsolete(True)
            self.session.report_error(exc)
        self._notify()
        if self.where is not None:
            self.session.replayed.emit(*self.where)

    def _notify(self) -> None:
        self.session.annotations_changed.emit()


class AddAnnotations(_StoreCommand):
    """Undo deletes the shapes; redo re-inserts them with the same ids."""

    def __init__(self, session, added: list[Annotation], text: str = "Add shape",
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(session, text, parent)
        self.added = deepcopy(added)
        if added:
            self._locate(added[0].frame_id, [a.id for a in added])

    def _apply(self) -> None:
        ann_repo.add_annotations(self.session.conn, deepcopy(self.added))

    def _revert(self) -> None:
        ann_repo.delete_annotations(self.session.conn, [a.id for a in self.added])


class DeleteAnnotations(AddAnnotations):
    """The inverse of AddAnnotations: undo restores the same ids and geometry."""

    def __init__(self, session, deleted: list[Annotation], text: str = "Delete shape") -> None:
        super().__init__(session, deleted, text)

    def _apply(self) -> None:
        super()._revert()

    def _revert(self) -> None:
        super()._apply()


class UpdateAnnotations(_StoreCommand):
    """Geometry, class or status changes of existing annotations (before -> after)."""

    def __init__(self, session, before: list[Annotation], after: list[Annotation],
                 text: str) -> None:
        super().__init__(session, text)
        self.before = deepcopy(before)
        self.after = deepcopy(after)
        if after:
            self._locate(after[0].frame_id, [a.id for a in after])

    def _apply(self) -> None:
        for ann in self.after:
            ann_repo.update_annotation(self.session.conn, ann)

    def _revert(self) -> None:
        for ann in self.before:
            ann_repo.update_annotation(self.session.conn, ann)


class EditClass(_StoreCommand):
    """Rename and/or recolour a class."""

    def __init__(self, session, class_id: int, before: tuple[str, str], after: tuple[str, str],
                 text: str) -> None:
        super().__init__(session, text)
        self.class_id = class_id
        self.before = before
        self.after = after

    def _apply(self) -> None:
        name, color = self.after
        class_repo.update_class(self.session.conn, self.class_id, name=name, color=color)

    def _revert(self) -> None:
        name, color = self.before
        class_repo.update_class(self.session.conn, self.class_id, name=name, color=color)

    def _notify(self) -> None:
        self.session.classes_changed.emit()


class AddClass(_StoreCommand):
    """Undo deletes the new class (refused, with a message, once annotations use it)."""

    def __init__(self, session, cls: LabelClass) -> None:
        super().__init__(session, f"Add class '{cls.name}'")
        self.cls = deepcopy(cls)

    def _apply(self) -> None:
        class_repo.add_class(self.session.conn, self.cls.name, self.cls.color, class_id=self.cls.id,
                             kind=self.cls.kind)

    def _revert(self) -> None:
        class_repo.delete_class(self.session.conn, self.cls.id)

    def _notify(self) -> None:
        self.session.classes_changed.emit()


class DeleteClass(_StoreCommand):
    """Undo re-creates the class under its id and gives the moved annotations back to it."""

    def __init__(self, session, cls: LabelClass, reassign_to: int | None,
                 moved: list[Annotation]) -> None:
        super().__init__(session, f"Delete class '{cls.name}'")
        self.cls = deepcopy(cls)
        self.reassign_to = reassign_to
        self.moved = deepcopy(moved)

    def _apply(self) -> None:
        class_repo.delete_class(self.session.conn, self.cls.id, reassign_to=self.reassign_to)

    def _revert(self) -> None:
        class_repo.add_class(self.session.conn, self.cls.name, self.cls.color, class_id=self.cls.id,
                             kind=self.cls.kind)
        for ann in self.moved:
            ann_repo.update_annotation(self.session.conn, ann)

    def _notify(self) -> None:
        self.session.classes_changed.emit()
        self.session.annotations_changed.emit()
        self.session.frames_changed.emit()


class DeleteFrames(_StoreCommand):
    """Undo puts the frame images back from the trash and restores rows and annotations."""

    def __init__(self, session, frames: list[Frame], annotations: list[Annotation]) -> None:
        super().__init__(session, f"Delete {len(frames)} frame(s)")
        self.frames = deepcopy(frames)
        self.annotations = deepcopy(annotations)
        if frames:
            self.where = (frames[0].source_id, frames[0].frame_index, [])

    def _apply(self) -> None:
        frame_repo.delete_frames(self.session.conn, [f.id for f in self.frames])
        self.session.move_frame_images(self.frames, to_trash=True)

    def _revert(self) -> None:
        self.session.move_frame_images(self.frames, to_trash=False)
        frame_repo.restore_frames(self.session.conn, self.frames)
        ann_repo.add_annotations(self.session.conn, deepcopy(self.annotations))

    def _notify(self) -> None:
        self.session.frames_changed.emit()
        self.session.annotations_changed.emit()



class SetExcluded(_StoreCommand):
    """Exclude frames from datasets (or include them again); undo restores each frame's
    earlier mark (some of them may have been excluded already)."""

    def __init__(self, session, frame_ids: list[int], excluded: bool,
                 before: set[int]) -> None:
        verb = "Exclude" if excluded else "Include"
        super().__init__(session, f"{verb} {len(frame_ids)} frame(s) "
                                  f"{'from' if excluded else 'in'} datasets")
        self.frame_ids, self.excluded = list(frame_ids), excluded
        self.were_excluded = [i for i in frame_ids if i in before]

    def _apply(self) -> None:
        dataset_exclusions.set_excluded(self.session.conn, self.frame_ids, self.excluded)

    def _revert(self) -> None:
        were = set(self.were_excluded)
        dataset_exclusions.set_excluded(self.session.conn, [i for i in self.frame_ids
                                                            if i not in were], False)
        dataset_exclusions.set_excluded(self.session.conn, self.were_excluded, True)

    def _notify(self) -> None:
        self.session.exclusions_changed.emit(self.frame_ids)


class CaptureFrame(_StoreCommand):
    """Undo removes the captured frame and moves its image to the trash (refused while
    annotations use the frame); redo puts both back under the same id."""

    def __init__(self, session, frame: Frame, parent: QUndoCommand | None = None) -> None:
        super().__init__(session, f"Capture frame {frame.frame_index}", parent)
        self.frame = deepcopy(frame)
        self.where = (frame.source_id, frame.frame_index, [])

    def _apply(self) -> None:
        self.session.move_frame_images([self.frame], to_trash=False)
        frame_repo.restore_frames(self.session.conn, [self.frame])

    def _revert(self) -> None:
        if ann_repo.list_annotations(self.session.conn, self.frame.id):
            raise LabelLoopError(f"frame {self.frame.frame_index} has annotations now, so its"
                                 " capture is not undone", field="frame",
                                 hint="delete the frame from the gallery instead")
        frame_repo.delete_frames(self.session.conn, [self.frame.id])
        self.session.move_frame_images([self.frame], to_trash=True)

    def _notify(self) -> None:
        self.session.frames_changed.emit()
        self.session.annotations_changed.emit()


def is_translation(before, after) -> bool:
    """True when `after` is `before` shifted by one (dx, dy): a move, not a resize."""
    flat_a = [float(v) for v in _flatten(before)]
    flat_b = [float(v) for v in _flatten(after)]
    if len(flat_a) != len(flat_b) or len(flat_a) < 2:
        return False
    dx, dy = flat_b[0] - flat_a[0], flat_b[1] - flat_a[1]
    return all(abs(b - a - (dx if i % 2 == 0 else dy)) < 1e-6
               for i, (a, b) in enumerate(zip(flat_a, flat_b)))


def _flatten(geometry) -> list:
    if geometry and isinstance(geometry[0], (list, tuple)):
        return [v for point in geometry for v in point]
    return list(geometry)


class SetClassKind(_StoreCommand):
    """Turn an object class into a frame tag, or back."""

    def __init__(self, session, class_id: int, before: str, after: str, text: str) -> None:
        super().__init__(session, text)
        self.class_id, self.before, self.after = class_id, before, after

    def _apply(self) -> None:
        class_repo.set_kind(self.session.conn, self.class_id, self.after)

    def _revert(self) -> None:
        class_repo.set_kind(self.session.conn, self.class_id, self.before)

    def _notify(self) -> None:
        self.session.classes_changed.emit()
