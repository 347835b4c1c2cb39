"""Label classes: object classes (boxes, polygons) and frame tags (whole-frame labels)."""
from __future__ import annotations

import re
import sqlite3
import unicodedata

from src.db._rows import select
from src.db.connection import transaction
from src.db.records import LabelClass
from src.errors import AnnotationError

_COLUMNS = "id, name, color, created_at, kind"
KINDS = ("object", "tag")
# Which annotation kinds a class of each kind labels.
ANNOTATION_KINDS = {"object": ("box", "polygon"), "tag": ("tag",)}
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# A class name becomes a crops folder name (%XX-encoded, 3 bytes per byte at worst): 80
# bytes keep that under the 255-byte file name limit of every common file system.
MAX_NAME_BYTES = 80
# Distinct colours (Sasha Trubetskoy's list) handed out to new classes in turn.
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3",
           "#808000", "#000075")


def class_name_problem(name: str) -> str | None:
    """Why `name` (stripped) cannot be a class name, or None. Control characters would
    split the CLI's one-line messages and cannot be written in XML (VOC)."""
    if not name:
        return "a class name cannot be empty"
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" for c in name):
        return f"class name {name[:80]!r} holds control characters"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"class name {name[:40]!r}... is too long ({size} bytes, at most {MAX_NAME_BYTES})"
    return None


def _check(name: str, color: str, kind: str = "object") -> str:
    if kind not in KINDS:
        raise AnnotationError(f"invalid class kind '{kind}'", field="kind",
                              hint="use 'object' (boxes, polygons) or 'tag' (whole frame)")
    name = name.strip()
    problem = class_name_problem(name)
    if problem:
        raise AnnotationError(problem, field="name", hint="type a name such as 'car'")
    if not _COLOR.match(color):
        raise AnnotationError(f"invalid colour '{color}'", field="color",
                              hint="use the form #rrggbb")
    return name


def add_class(conn: sqlite3.Connection, name: str, color: str | None = None, *,
              class_id: int | None = None, kind: str = "object") -> LabelClass:
    """Create a class of `kind` ('object' or 'tag'); a name already used (case-insensitively)
    is refused. `class_id` re-creates a deleted class under its old id (undo of a deletion)."""
    with transaction(conn):  # checked under the write lock: another process may add it
        if color is None:
            count = conn.execute("SELECT COUNT(*) FROM label_classes").fetchone()[0]
            color = PALETTE[count % len(PALETTE)]
        name = _check(name, color, kind)
        if get_class_by_name(conn, name) is not None:
            raise AnnotationError(f"a class named '{name}' already exists", field="name",
                                  hint="choose another name")
        cur = conn.execute("INSERT INTO label_classes (id, name, color, kind)"
                           " VALUES (?, ?, ?, ?)", (class_id, name, color, kind))
    return get_class(conn, cur.lastrowid)


def ensure_class(conn: sqlite3.Connection, name: str, kind: str = "object") -> LabelClass:
    """The class called `name`, created as `kind` if missing (imports match classes by name);
    an existing class of the other kind is refused, so a box never gets a frame tag's class.

    Looked up again under the write lock, so two processes ensuring the same name get
    the same row."""
    cls = get_class_by_name(conn, name)
    if cls is None:
        with transaction(conn):
            cls = get_class_by_name(conn, name) or add_class(conn, name, kind=kind)
    check_kind(cls, kind)
    return cls


def check_kind(cls: LabelClass, kind: str) -> None:
    """Refuse to use `cls` for an annotation of the other class kind."""
    if cls.kind != kind:
        what = {"object": "an object class (boxes, polygons)", "tag": "a frame tag"}
        raise AnnotationError(f"class '{cls.name}' is {what[cls.kind]}, not {what[kind]}",
                              field="class", hint=f"use {what[kind]} for this, or another name")


def kind_of_annotation(annotation_kind: str) -> str:
    """The class kind that labels an annotation kind ('box' -> 'object', 'tag' -> 'tag')."""
    return "tag" if annotation_kind == "tag" else "object"


def get_class(conn: sqlite3.Connection, class_id: int) -> LabelClass | None:
    rows = select(conn, LabelClass, f"SELECT {_COLUMNS} FROM label_classes WHERE id = ?",
                  (class_id,))
    return rows[0] if rows else None


def get_class_by_name(conn: sqlite3.Connection, name: str) -> LabelClass | None:
    rows = select(conn, LabelClass, f"SELECT {_COLUMNS} FROM label_classes WHERE name = ?",
                  (name.strip(),))
    return rows[0] if rows else None


def list_classes(conn: sqlite3.Connection, kind: str | None = None) -> list[LabelClass]:
    """Every class (or those of one kind) in creation order."""
    if kind is None:
        return select(conn, LabelClass, f"SELECT {_COLUMNS} FROM label_classes ORDER BY id")
    return select(conn, LabelClass,
                  f"SELECT {_COLUMNS} FROM label_classes WHERE kind = ? ORDER BY id", (kind,))


def set_kind(conn: sqlite3.Connection, class_id: int, kind: str) -> LabelClass:
    """Turn an object class into a frame tag or back; refused while annotations of the
    other kind use it."""
    cls = get_class(conn, class_id)
    if cls is None:
        raise AnnotationError(f"no class with id {class_id}", field="class_id")
    _check(cls.name, cls.color, kind)
    with transaction(conn):
        clashing = conn.execute(
            "SELECT COUNT(*) FROM annotations WHERE class_id = ? AND (kind = 'tag') <> (? = 'tag')",
            (class_id, kind)).fetchone()[0]
        if clashing:
            raise AnnotationError(
                f"class '{cls.name}' labels {clashing} annotation(s) that a {kind} class cannot",
                field="kind", hint="delete or reassign them first")
        conn.execute("UPDATE label_classes SET kind = ? WHERE id = ?", (kind, class_id))
    return get_class(conn, class_id)


def update_class(conn: sqlite3.Connection, class_id: int, *, name: str | None = None,
                 color: str | None = None) -> LabelClass:
    """Rename and/or recolour a class."""
    current = get_class(conn, class_id)
    if current is None:
        raise AnnotationError(f"no class with id {class_id}", field="class_id")
    new_name = _check(name if name is not None else current.name, color or current.color)
    other = get_class_by_name(conn, new_name)
    if other is not None and other.id != class_id:
        raise AnnotationError(f"a class named '{new_name}' already exists", field="name",
                              hint="choose another name")
    with transaction(conn):
        conn.execute("UPDATE label_classes SET name = ?, color = ? WHERE id = ?",
                     (new_name, color or current.color, class_id))
    return get_class(conn, class_id)


def annotation_counts(conn: sqlite3.Connection) -> dict[int, int]:
    """Class id -> number of annotations using it (classes with none map to 0)."""
    rows = conn.execute(
        "SELECT c.id, COUNT(a.id) FROM label_classes c LEFT JOIN annotations a"
        " ON a.class_id = c.id GROUP BY c.id").fetchall()
    return dict(rows)


def delete_class(conn: sqlite3.Connection, class_id: int, *,
                 reassign_to: int | None = None) -> None:
    """Delete a class; refused while annotations use it, unless they are reassigned."""
    with transaction(conn):
        used = conn.execute("SELECT COUNT(*) FROM annotations WHERE class_id = ?",
                            (class_id,)).fetchone()[0]
        if used and reassign_to is None:
            cls = get_class(conn, class_id)
            raise AnnotationError(
                f"class '{cls.name if cls else class_id}' is used by {used} annotation(s)",
                field="class", hint="reassign them to another class first, or delete them")
        if used:
            if get_class(conn, reassign_to) is None:
                raise AnnotationError(f"no class with id {reassign_to} to reassign to",
                                      field="reassign_to")
            conn.execute("UPDATE annotations SET class_id = ?, updated_at ="
                         " strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE class_id = ?",
                         (reassign_to, class_id))
        conn.execute("DELETE FROM label_classes WHERE id = ?", (class_id,))
