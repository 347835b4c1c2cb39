"""Import annotations from, and export them to, YOLO, COCO, Pascal VOC and labelme.

An import parses every file first (nothing is written while a file may still be
malformed), then registers the image folders, classes and annotations in ONE transaction;
if anything fails, the rows roll back and the frame files it copied are removed.
An export is written into a temporary folder and renamed into place.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image

from src.data.capture import StagedFolder, register_staged_folder, stage_image_folder
from src.data.formats import coco, imagefolder, labelme, voc, yolo
from src.data.formats.files import place_file
from src.data.formats.model import LabeledImage, LabeledSet, LabeledShape
from src.data.geometry import Box, clip_box, clip_polygon, shape_of
from src.data.video import list_image_files, probe_media
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import frames as frames_repo
from src.db import leftovers
from src.db import sources as sources_repo
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import Annotation, Frame, MediaSource
from src.disk_space import reports_full_disk
from src.errors import DatasetError, LabelLoopError
from src.processes import crash_point

FORMATS = ("yolo", "coco", "voc", "labelme")
# imagefolder: classify and crops dataset versions (image folders, not annotations)
EXPORT_FORMATS = (*FORMATS, "imagefolder")
_WRITERS = {"yolo": yolo.write, "coco": coco.write, "voc": voc.write, "labelme": labelme.write}


def _check_format(fmt: str, known: tuple[str, ...] = FORMATS) -> str:
    if fmt not in known:
        raise DatasetError(f"unknown annotation format '{fmt}'", field="format",
                           hint=f"use one of {', '.join(known)}")
    return fmt


def read_annotations(path: str | Path, fmt: str, *, images: Path | None = None) -> LabeledSet:
    """Parse a dataset in `fmt` without touching any project; its images must lie inside
    the dataset folder or `images`."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DatasetError("no such file or folder", path=path)
    _check_format(fmt)
    if images is not None:
        images = Path(images).expanduser().resolve()
        if not images.is_dir():
            raise DatasetError("not a folder", path=images, field="--images",
                               hint="pass the folder that holds the dataset's images")
    if fmt == "yolo":
        return yolo.read(path, images_dir=images)
    return {"coco": coco.read, "voc": voc.read, "labelme": labelme.read}[fmt](path, images)


@reports_full_disk("the imported images and annotations",
                   lambda project, *_, **__: project.frames_dir)
def import_annotations(project: Project, path: str | Path, fmt: str, *,
                       images: str | Path | None = None) -> dict:
    """Import a YOLO/COCO/VOC/labelme dataset into `project`; returns summary counts.

    Only the images the annotations name are imported. Decoding and staging them happens
    before the write transaction, which then only inserts rows and renames staged folders:
    other writers (the GUI saving an edit) are never kept waiting for the whole import."""
    labeled = read_annotations(path, fmt, images=Path(images) if images else None)
    folders: dict[tuple[Path, str | None], list[Path]] = {}
    for image in labeled.images:       # a subset becomes a source of its own (see _source_name)
        subset = image.split if labeled.subsets else None
        folders.setdefault((image.path.parent, subset), []).append(image.path)
    skipped = Counter(labeled.skipped)
    before = {c.name.casefold() for c in classes_repo.list_classes(project.conn)}
    plans: list[_FolderPlan] = []
    try:
        for (folder, subset), files in folders.items():   # one at a time: a failure discards all
            plans.append(_plan_folder(project, folder, files, _source_name(folder, subset)))
        with transaction(project.conn):
            frame_of = {}
            for plan in plans:
                frame_of.update(plan.register(project))
            class_ids = {name.casefold(): classes_repo.ensure_class(project.conn, name, kind).id
                         for name, kind in _class_kinds(labeled)}
            anns = []
            for image in labeled.images:
                anns += _annotations(image, frame_of[image.path], class_ids, skipped)
            annotations_repo.add_annotations(project.conn, anns)
    except BaseException:
        for plan in plans:
            plan.undo(project)
        raise
    finally:
        for plan in plans:
            plan.discard()
    created: dict[str, str] = {}              # 'Car' and 'car' are one class, created once
    for name in labeled.classes:
        if name.casefold() not in before:
            created.setdefault(name.casefold(), name)
    new = list(created.values())
    summary = {"format": fmt, "images": len(labeled.images), "annotations": len(anns),
               "classes_created": len(new), "new_classes": new, "sources": len(folders),
               "skipped": dict(skipped)}
    if labeled.subsets:
        summary["subsets"] = dict(Counter(image.split for image in labeled.images))
    return summary


def _source_name(folder: Path, subset: str | None) -> str:
    """The name of the source the images of `subset` in `folder` become: the store has no
    split of its own (dataset versions split afresh), so a subset is kept as a source, which
    `sources`, the gallery and group_by=source see. 'val' for images/val/, 'images (val)' for
    the val images of a folder shared by several subsets."""
    return folder.name if subset in (None, folder.name) else f"{folder.name} ({subset})"


@dataclass
class _SubsetLinks:
    """Links to (or copies of) just the images of a folder that the annotations name, staged
    under imports/ and renamed to imports/<folder>-<key> inside the write transaction that
    registers them: a killed import leaves a pid-named staging folder (swept), never a link
    folder without its source row."""
    staging: Path
    final: Path

    def place(self) -> None:
        """Rename into place; call under the write lock, with no source row at `final`."""
        if self.final.exists():       # no row names it, and we hold the lock: a leftover
            shutil.rmtree(self.final)
        os.rename(self.staging, self.final)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


@dataclass
class _FolderPlan:
    """The images one folder contributes: frames of a registered source, or a staged one."""
    originals: list[Path]                 # the image files, in frame order
    source: MediaSource | None = None     # already registered
    staged: StagedFolder | None = None    # to register
    links: _SubsetLinks | None = None     # the staged source's folder, for a subset
    placed: list[Path] = field(default_factory=list)   # folders this import renamed in

    def register(self, project: Project) -> dict[Path, Frame]:
        """Image file -> frame, registering the staged source (inside the transaction)."""
        if self.source is not None:
            frames = frames_repo.list_frames(project.conn, self.source.id)
        else:
            existed = sources_repo.get_source_by_path(project.conn, self.staged.record.path)
            if existed is None and self.links is not None:
                self.links.place()
                self.placed.append(self.links.final)
            source, frames = register_staged_folder(project, self.staged)
            if existed is None:
                self.placed.append(project.frames_dir / str(source.id))
        if len(frames) != len(self.originals):
            raise DatasetError(f"the folder was imported before with {len(frames)} images and"
                               f" now holds {len(self.originals)}",
                               path=self.originals[0].parent,
                               hint="import the annotations into a new project")
        return dict(zip(self.originals, frames))

    def undo(self, project: Project) -> None:
        for folder in self.placed:
            shutil.rmtree(folder, ignore_errors=True)

    def discard(self) -> None:
        for staged in (self.staged, self.links):
            if staged is not None:
                staged.discard()


def _plan_folder(project: Project, folder: Path, wanted: list[Path], name: str) -> _FolderPlan:
    """Reuse the folder's source when it holds every wanted image; else stage the folder
    (every image wanted) or links to just the wanted ones, as a source called `name`."""
    wanted_set = set(wanted)
    every = [f.resolve() for f in list_image_files(folder)]
    existing = sources_repo.get_source_by_path(project.conn, str(folder))
    if existing is not None and wanted_set <= set(every):
        return _FolderPlan(every, source=existing)
    if set(every) == wanted_set:
        record = probe_media(folder)
        record.name = name
        return _FolderPlan(every, staged=stage_image_folder(project, record))
    names = sorted(f.name for f in wanted_set)
    final = _links_folder(project, folder, names)
    registered = sources_repo.get_source_by_path(project.conn, str(final))
    if registered is not None and _holds(final, names):
        return _FolderPlan([folder / f.name for f in list_image_files(final)], source=registered)
    links = _SubsetLinks(_stage_links(project, sorted(wanted_set)), final)
    plan = _FolderPlan([folder / f.name for f in list_image_files(links.staging)], links=links)
    try:
        record = probe_media(links.staging)
        record.path, record.name = str(final), name
        plan.staged = stage_image_folder(project, record, links.staging)
    except BaseException as exc:
        plan.discard()
        if isinstance(exc, LabelLoopError) and exc.path and \
                Path(exc.path).parent == links.staging:
            exc.path = str(folder / Path(exc.path).name)    # name the user's file, not ours
        raise
    return plan


def _links_folder(project: Project, folder: Path, names: list[str]) -> Path:
    """imports/<folder>-<key>: one per (folder, set of names), so a repeat import reuses it."""
    key = hashlib.sha256("\n".join([str(folder), *names]).encode("utf-8", "surrogateescape"))
    return (project.root / "imports").resolve() / f"{folder.name[:100]}-{key.hexdigest()[:12]}"


def _stage_links(project: Project, files: list[Path]) -> Path:
    """A pid-named staging folder under imports/ holding links to (or copies of) `files`."""
    imports = project.root / "imports"
    if imports.is_dir():
        leftovers.remove_dead_staging(imports)    # what a killed import left
    staging = leftovers.staging_dir(imports, "import")
    try:
        for file in files:
            place_file(file, staging / file.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _holds(folder: Path, names: list[str]) -> bool:
    return folder.is_dir() and sorted(p.name for p in folder.iterdir()) == names


def _annotations(image: LabeledImage, frame: Frame, class_ids: dict[str, int],
                 skipped: Counter) -> list[Annotation]:
    w, h = frame.width, frame.height
    if image.width is not None and (image.width, image.height) != (w, h):
        raise DatasetError(f"annotations are for a {image.width}x{image.height} image but the"
                           f" file is {w}x{h}", path=image.path,
                           hint="fix the width/height in the annotation file")
    out = []
    for item in image.shapes:
        shape = item.to_pixels(w, h).shape
        if isinstance(shape, Box):
            shape = clip_box(shape, w, h)
            ok = shape.width > 0 and shape.height > 0
        else:
            shape = clip_polygon(shape, w, h)
            ok = len(shape.points) >= 3 and shape.area > 0
        if not ok:
            skipped["shapes with no area inside the image"] += 1
            continue
        kind = "box" if isinstance(shape, Box) else "polygon"
        out.append(Annotation(frame.id, class_ids[item.label.casefold()], kind,
                              shape.to_list(), source="imported"))
    for tag in dict.fromkeys(image.tags):
        out.append(Annotation(frame.id, class_ids[tag.casefold()], "tag", None,
                              source="imported"))
    return out


# ---- export --------------------------------------------------------------------------

@reports_full_disk("the export", lambda project, out, *_, **__: Path(out))
def export_annotations(project: Project, out: str | Path, fmt: str, *,
                       dataset: str | None = None) -> dict:
    """Write the project's accepted annotations (or a detect/segment dataset version) in
    `fmt`, or a classify/crops dataset version as `imagefolder`, into the new or empty
    folder `out`; returns summary counts."""
    _check_format(fmt, EXPORT_FORMATS)
    out = _usable_output(out)
    if fmt == "imagefolder":
        snapshot, classes = _folder_dataset(project, dataset)
        write = partial(imagefolder.write, snapshot)
    else:
        labeled = _dataset_set(project, dataset) if dataset else project_set(project)
        write, classes = partial(_WRITERS[fmt], labeled), labeled.classes
    with leftovers.export_folder(project.root, out) as tmp:  # swept if the export is killed
        summary = write(tmp)
        crash_point("export:written")
    return {"format": fmt, "path": str(out), "classes": len(classes), **summary}


def _usable_output(out: str | Path) -> Path:
    """`out` resolved, refused unless it is a new or empty folder whose parent can be made
    and written (not under a file, /proc, a read-only disk; not a name too long)."""
    out = Path(out).expanduser().resolve()
    try:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise DatasetError("the output folder exists and is not empty", path=out,
                               hint="choose a new folder")
        above = next(p for p in out.parents if p.exists())
        if not above.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{above} is a file, not a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=out.parent))   # /proc, read-only...
    except OSError as exc:
        raise DatasetError(f"cannot write the export here ({exc.strerror or exc})", path=out,
                           field="OUT", hint="choose a folder you can create and write")
    return out


def _class_kinds(labeled: LabeledSet) -> list[tuple[str, str]]:
    """Each class name with its kind: a frame tag when only image-level labels (labelme
    flags) use it, an object class otherwise."""
    tags = {t.casefold(): t for image in labeled.images for t in image.tags}
    shapes = {s.label.casefold() for image in labeled.images for s in image.shapes}
    names = list(dict.fromkeys(labeled.classes + list(tags.values())))
    return [(n, "tag" if n.casefold() in tags and n.casefold() not in shapes else "object")
            for n in names]


def project_set(project: Project) -> LabeledSet:
    """Every captured frame with its accepted shapes and tags (frame/annotation ids kept)."""
    classes = classes_repo.list_classes(project.conn)
    names = {c.id: c.name for c in classes}
    by_frame: dict[int, list[Annotation]] = {}
    for ann in annotations_repo.list_annotations(project.conn, status="accepted"):
        by_frame.setdefault(ann.frame_id, []).append(ann)
    images = []
    for frame in frames_repo.list_frames(project.conn):
        anns = by_frame.get(frame.id, [])
        path = project.abspath(frame.image_path)
        shapes = [LabeledShape(names[a.class_id], shape_of(a), annotation_id=a.id)
                  for a in anns if a.kind != "tag"]
        tags = [names[a.class_id] for a in anns if a.kind == "tag"]
        images.append(LabeledImage(
            path, shapes, frame.width, frame.height, tags=tags, frame_id=frame.id,
            name=f"s{frame.source_id}_{frame.frame_index:06d}{path.suffix.lower()}"))
    shape_classes = [c.name for c in classes if c.kind == "object"]
    return LabeledSet(images, shape_classes)


def _dataset_set(project: Project, ref: str) -> LabeledSet:
    """A detect/segment version's images with their splits (`subsets`) and shapes."""
    from src.data.datasets import resolve_dataset
    record, path = resolve_dataset(project, ref)
    if record.task not in ("detect", "segment"):
        raise DatasetError(f"dataset {record.name}:v{record.version} is a {record.task}"
                           " dataset (image folders), not boxes or polygons", field="dataset",
                           hint="export it with --format imagefolder, or export a detect or"
                                " segment dataset, or the project")
    labeled = yolo.read(path / "data.yaml", root=path)
    for image in labeled.images:
        with Image.open(image.path) as im:
            image.width, image.height = im.size
        image.shapes = [s.to_pixels(image.width, image.height) for s in image.shapes]
    labeled.subsets = list(dict.fromkeys(image.split for image in labeled.images))
    return labeled


def _folder_dataset(project: Project, ref: str | None) -> tuple[Path, list[str]]:
    """The folder and classes of a classify/crops version, for an imagefolder export."""
    from src.data.datasets import resolve_dataset
    if not ref:
        raise DatasetError("imagefolder exports a classify or crops dataset version",
                           field="dataset", hint="pass --dataset NAME[:vN] (build one with"
                                                 " 'dataset build NAME --task crops')")
    record, path = resolve_dataset(project, ref)
    if record.task not in ("classify", "crops"):
        raise DatasetError(f"dataset {record.name}:v{record.version} is a {record.task}"
                           " dataset, not image folders", field="dataset",
                           hint="export it as yolo, coco, voc or labelme")
    return path, list(record.summary.get("classes") or [])


__all__ = ["EXPORT_FORMATS", "FORMATS", "export_annotations", "import_annotations", "project_set",
           "read_annotations"]
