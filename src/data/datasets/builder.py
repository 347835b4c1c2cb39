"""Build a frozen, versioned dataset snapshot datasets/<name>/v<N>/.

The snapshot is written into a temporary folder inside datasets/<name>/ and renamed into
place only when complete, then recorded in the store; a failure (or a kill) leaves no
half-built version behind.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2

from src.atomic_files import write_text_atomic
from src.data import augment as augment_mod
from src.data.augment import LabelledShape
from src.data.datasets.naming import class_folder_name
from src.data.datasets.report import ReportBuilder, to_markdown
from src.data.datasets.selection import Sample, SampleObject, Selection, select
from src.data.datasets.spec import SPLITS, DatasetSpec
from src.data.datasets.splits import SplitItem, split_items
from src.data.formats.yolo import data_yaml_text
from src.data.geometry import Box, Polygon, box_to_yolo, polygon_to_yolo
from src.db import datasets as datasets_repo
from src.db import leftovers
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import DatasetRecord
from src.disk_space import reports_full_disk
from src.platform_support import link_or_copy
from src.errors import DatasetError
from src.processes import crash_point

Progress = Callable[[str, int, int], None]


@dataclass
class _Entry:
    """One written image (or crop) as the manifest lists it."""
    split: str
    project: int
    frame_id: int
    file: str
    annotation_ids: list[int]
    labels: list[str]
    augmented_from: str | None = None


@dataclass
class _Plan:
    selection: Selection
    classes: list[str]
    folders: dict[str, str]
    splits: dict[str, list[Sample]]
    counts: dict[str, Counter] = field(default_factory=dict)


@reports_full_disk("the dataset", lambda project, spec, **_: project.datasets_dir / spec.name)
def build_dataset(project: Project, spec: DatasetSpec, *,
                  progress: Progress | None = None) -> tuple[DatasetRecord, Path]:
    """Build the snapshot `spec` describes into `project` and record it; returns the record
    and the absolute snapshot folder."""
    with _gc_paused():
        return _build(project, spec, progress)


@contextmanager
def _gc_paused():
    """A build allocates a few objects per annotation and keeps them all: the cyclic
    collector would rescan them over and over (about a third of the time at 50k boxes)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(project: Project, spec: DatasetSpec,
           progress: Progress | None) -> tuple[DatasetRecord, Path]:
    plan = _plan(project, spec)
    dataset_dir = project.datasets_dir / spec.name
    dataset_dir.mkdir(parents=True, exist_ok=True)
    leftovers.remove_dead_staging(dataset_dir)
    version = datasets_repo.next_version(project.conn, spec.name)
    tmp = leftovers.staging_dir(dataset_dir, "build")
    try:
        content = _write_snapshot(tmp, plan, spec, progress)
        report = _write_meta(content, version)
        crash_point("build:written")
        return _record_version(project, content, version, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _record_version(project: Project, content: "_Content", version: int,
                    report: dict) -> tuple[DatasetRecord, Path]:
    """Rename the snapshot to v<N> and insert its row in one transaction. N is checked again
    under the write lock; when a concurrent build took it, the meta files are rewritten."""
    spec, placed = content.spec, None
    try:
        with transaction(project.conn):
            latest = datasets_repo.next_version(project.conn, spec.name)
            if latest != version:
                version, report = latest, _write_meta(content, latest)
            final = content.root.parent / f"v{version}"
            _rename_into_place(content.root, final)
            placed = final
            crash_point("build:placed")
            record = datasets_repo.add_dataset(project.conn, DatasetRecord(
                name=spec.name, version=version, task=spec.task, path=project.relpath(final),
                config=spec.to_config(), content_hash=report["content_hash"],
                summary=_summary(report)))
    except BaseException:
        if placed is not None and datasets_repo.get_dataset(
                project.conn, spec.name, version) is None:
            shutil.rmtree(placed, ignore_errors=True)
        raise
    return record, final


def _rename_into_place(tmp: Path, final: Path) -> None:
    """Called under the write lock: a v<N> folder without a row can only be what a killed
    build left (a live one renames under the lock too), so it is replaced."""
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)


def _plan(project: Project, spec: DatasetSpec) -> _Plan:
    selection = select(project, spec)
    if spec.task == "crops":
        _drop_small_crops(selection, spec)
    classes = list(selection.class_names)
    folders = {name: class_folder_name(name) for name in classes}
    if spec.task in ("classify", "crops"):
        # ImageFolder readers number classes by sorted folder name: use the same order.
        classes.sort(key=lambda n: folders[n])
    if spec.augment is not None:
        unknown = [n for n in spec.augment.factors if n not in classes]
        if unknown:
            raise DatasetError(f"cannot oversample unknown class '{unknown[0]}'",
                               field="augment", hint=f"dataset classes: {', '.join(classes)}")
        augment_mod.build_pipeline(spec.augment.pipeline)  # fail before writing anything
    by_key = {s.key: s for s in selection.samples}
    keys = split_items([SplitItem(s.key, s.group, s.labels()) for s in selection.samples],
                       spec.split, spec.seed)
    plan = _Plan(selection, classes, folders, {n: [by_key[k] for k in keys[n]] for n in SPLITS})
    plan.counts = {name: Counter() for name in classes}
    for split, samples in plan.splits.items():
        for sample in samples:
            for label, count in sample.labels().items():
                plan.counts[label][split] += count
    _check_minimum(plan, spec)
    return plan


def _drop_small_crops(selection: Selection, spec: DatasetSpec) -> None:
    kept = []
    for sample in selection.samples:
        before = len(sample.objects)
        sample.objects = [o for o in sample.objects if _is_big_enough(o, spec.crop_min_size)]
        sample.forget_labels()
        if before > len(sample.objects):
            dropped = before - len(sample.objects)
            selection.skipped[f"crops under {spec.crop_min_size} px"] += dropped
        if sample.objects:
            kept.append(sample)
    selection.samples = kept
    present = {o.class_name for s in kept for o in s.objects}
    selection.class_names = [n for n in selection.class_names if n in present]
    if not kept:
        raise DatasetError(f"no box is at least {spec.crop_min_size} px wide and high",
                           field="crop_min_size", hint="lower --crop-min-size")


def _is_big_enough(obj: SampleObject, min_size: int) -> bool:
    box = _bbox(obj.shape)
    return box.width >= min_size and box.height >= min_size


def _bbox(shape: Box | Polygon) -> Box:
    return shape.bbox() if isinstance(shape, Polygon) else shape


def _check_minimum(plan: _Plan, spec: DatasetSpec) -> None:
    needed = [s for s, r in zip(SPLITS, spec.split) if r > 0]
    for name in plan.classes:
        counts = plan.counts[name]
        short = [s for s in needed if counts[s] < spec.min_per_class]
        if short:
            have = ", ".join(f"{s} {counts[s]}" for s in SPLITS)
            raise DatasetError(
                f"class '{name}' has {counts[short[0]]} instance(s) in {short[0]}, fewer than "
                f"the minimum {spec.min_per_class} ({have})", field="min_per_class",
                hint="annotate more of it, lower --min-per-class, use --group-by none or a"
                     " smaller block, or drop/merge the class")


# ---- writing -------------------------------------------------------------------------

@dataclass
class _Content:
    """A snapshot's images, labels and split lists, written; its meta files still to come."""
    root: Path
    plan: _Plan
    spec: DatasetSpec
    writer: "_Writer"
    report: ReportBuilder
    entries: list[_Entry]
    content_hash: str


def _write_snapshot(root: Path, plan: _Plan, spec: DatasetSpec,
                    progress: Progress | None) -> _Content:
    """Write the images, labels and split lists into `root`."""
    writer = _WRITERS[spec.task](root, plan, spec)
    report = ReportBuilder(plan.classes)
    entries: list[_Entry] = []
    total = sum(len(v) for v in plan.splits.values())
    for split in SPLITS:
        for sample in plan.splits[split]:
            for entry, shapes in writer.write(split, sample):
                entries.append(entry)
                report.add_image(split, entry.labels, shapes)
            if progress:
                progress("write", len(entries), total)
    if spec.augment is not None:
        entries += _oversample(writer, plan, spec, report, progress)
    _write_split_lists(writer, entries)
    return _Content(root, plan, spec, writer, report, entries, writer.content_hash())


def _write_meta(content: _Content, version: int) -> dict:
    """Write data.yaml, the manifest and the reports for version `version`
    (again if a concurrent build took the version first); returns the full report."""
    root, writer, entries = content.root, content.writer, content.entries
    data_yaml = writer.data_yaml()
    meta = _meta(content.plan, content.spec, version, content.content_hash, writer)
    full = content.report.to_dict(**meta)
    write_text_atomic(root / "data.yaml", data_yaml_text(data_yaml))
    # Compact on purpose: json's C encoder is only used without indent (10k+ entries).
    write_text_atomic(root / "manifest.json", json.dumps(
        {**meta, "entries": [e.__dict__ for e in entries]}, separators=(",", ":")))
    write_text_atomic(root / "report.json", json.dumps(full, indent=2))
    write_text_atomic(root / "report.md", to_markdown(full))
    return full


def _meta(plan: _Plan, spec: DatasetSpec, version: int, content_hash: str, writer) -> dict:
    sel = plan.selection
    return {"name": spec.name, "version": version, "task": spec.task,
            "config": spec.to_config(), "seed": spec.seed, "content_hash": content_hash,
            "content_hash_covers": "every file's path; labels, crops, augmented images and"
                                   " split lists by SHA-256 of their bytes; hard-linked frames"
                                   " by size and modification time",
            "projects": [str(p) for p in sel.projects],
            "split": {"ratios": list(spec.split), "seed": spec.seed,
                      "group_by": spec.group_by, "block_size": spec.block_size},
            "mapping": sel.mapping, "dropped": sel.dropped,
            "folders": plan.folders if spec.task in ("classify", "crops") else {},
            "skipped": dict(sorted(sel.skipped.items())),
            "files": {"linked": writer.linked, "copied": writer.copied},
            "notes": writer.notes}


def _summary(report: dict) -> dict:
    return {"classes": report["classes"], "images": report["images"],
            "instances": report["instances"], "skipped": report["skipped"]}


def _write_split_lists(writer: _Writer, entries: list[_Entry]) -> None:
    (writer.root / "splits").mkdir()
    for split in SPLITS:
        lines = [f"{e.project}\t{e.frame_id}\t{e.file}\n" for e in entries if e.split == split]
        writer.write_file(f"splits/{split}.txt", "".join(lines).encode())


class _Writer:
    """Writes a snapshot's files and keeps a digest of each for the content hash: written
    files by their bytes, hard-linked frames by size and modification time (frames are
    never rewritten once captured, and re-reading thousands of them would dominate)."""

    def __init__(self, root: Path, plan: _Plan, spec: DatasetSpec) -> None:
        self.root, self.plan, self.spec = root, plan, spec
        self.prefix = str(root) + os.sep
        self.index = {name: i for i, name in enumerate(plan.classes)}
        self.linked = self.copied = 0
        self.notes: list[str] = []
        self.digests: list[tuple[str, bytes]] = []

    def place_image(self, source: Path | str, rel: str) -> None:
        """Hard-link a frame into the snapshot, or copy it where links are not possible."""
        try:
            stat = os.stat(source)
        except FileNotFoundError:
            raise DatasetError("frame image is missing", path=source,
                               hint="re-capture the frame or delete it from the project") from None
        if link_or_copy(source, self.prefix + rel):
            self.linked += 1
        else:
            self.copied += 1
        self.digests.append((rel, f"frame:{stat.st_size}:{stat.st_mtime_ns}".encode()))

    def write_file(self, rel: str, data: bytes) -> None:
        """Create a new file (plain os calls: a build writes thousands of small files)."""
        fd = os.open(self.prefix + rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:                      # a short write (disk nearly full) continues
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        self.digests.append((rel, hashlib.sha256(data).digest()))

    def write_image(self, rel: str, image) -> None:
        ok, encoded = cv2.imencode(os.path.splitext(rel)[1], image)
        if not ok:
            raise DatasetError("cannot encode image", path=self.prefix + rel)
        self.write_file(rel, encoded.tobytes())

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for rel, item in sorted(self.digests):
            digest.update(rel.encode() + b"\0" + item + b"\n")
        return digest.hexdigest()

    @staticmethod
    def file_name(sample: Sample, suffix: str = "") -> str:
        f = sample.frame
        ext = sample.image.suffix.lower() or ".png"
        return f"p{sample.project_index}_s{f.source_id}_{f.frame_index:06d}{suffix}{ext}"


class _YoloWriter(_Writer):
    """detect / segment: images/<split>/, labels/<split>/, ultralytics data.yaml."""

    def __init__(self, root, plan, spec) -> None:
        super().__init__(root, plan, spec)
        for split in SPLITS:
            (root / "images" / split).mkdir(parents=True)
            (root / "labels" / split).mkdir(parents=True)

    def write(self, split: str, sample: Sample):
        name = self.file_name(sample)
        self.place_image(sample.image, f"images/{split}/{name}")
        shapes = [(o.class_name, o.shape) for o in sample.objects]
        self._label(split, name, shapes, sample.frame.width, sample.frame.height)
        yield (_Entry(split, sample.project_index, sample.frame.id, f"images/{split}/{name}",
                      [o.annotation_id for o in sample.objects],
                      [o.class_name for o in sample.objects]), shapes)

    def _label(self, split: str, image_name: str, shapes, w: int, h: int) -> None:
        index = self.index
        if self.spec.task == "segment":
            lines = [f"{index[label]} " + " ".join(f"{min(max(v, 0.0), 1.0):.6f}"
                                                   for v in polygon_to_yolo(shape, w, h)) + "\n"
                     for label, shape in shapes]
        else:  # shapes were clipped to the frame when selected: values are within 0..1
            lines = ["%d %.6f %.6f %.6f %.6f\n" % (index[label], *box_to_yolo(_bbox(shape), w, h))
                     for label, shape in shapes]
        stem = image_name.rsplit(".", 1)[0]
        self.write_file(f"labels/{split}/{stem}.txt", "".join(lines).encode())

    def write_augmented(self, sample: Sample, image, shapes: list[LabelledShape], k: int,
                        annotation_ids: list[int]):
        name = self.file_name(sample, f"_aug{k:02d}")
        self.write_image(f"images/train/{name}", image)
        h, w = image.shape[:2]
        pairs = [(s.label, s.shape) for s in shapes]
        self._label("train", name, pairs, w, h)
        return _Entry("train", sample.project_index, sample.frame.id, f"images/train/{name}",
                      [], [s.label for s in shapes], augmented_from=self.file_name(sample)), pairs

    def data_yaml(self) -> dict:
        val = "images/val"
        if self.spec.split[1] == 0:
            val = "images/train"
            note = "val ratio is 0: data.yaml's val points to the training images"
            if note not in self.notes:  # written again when a concurrent build took the version
                self.notes.append(note)
        return {"train": "images/train", "val": val,
                "test": "images/test", "nc": len(self.plan.classes),
                "names": dict(enumerate(self.plan.classes))}


class _FolderWriter(_Writer):
    """classify (whole frames by tag) and crops (one image per shape): <split>/<class>/."""

    def __init__(self, root, plan, spec) -> None:
        super().__init__(root, plan, spec)
        for split, ratio in zip(SPLITS, spec.split):
            (root / split).mkdir()
            if ratio > 0:  # same class folders everywhere: the same class numbering
                for folder in plan.folders.values():
                    (root / split / folder).mkdir()

    def write(self, split: str, sample: Sample):
        if self.spec.task == "classify":
            rel = f"{split}/{self.plan.folders[sample.tag]}/{self.file_name(sample)}"
            self.place_image(sample.image, rel)
            yield (_Entry(split, sample.project_index, sample.frame.id, rel, [], [sample.tag]),
                   [])
            return
        image = _imread(sample.image)
        for obj in sample.objects:
            crop = _crop(image, _bbox(obj.shape), self.spec.crop_padding)
            name = self.file_name(sample, f"_a{obj.annotation_id}")
            rel = f"{split}/{self.plan.folders[obj.class_name]}/{name}"
            self.write_image(rel, crop)
            yield (_Entry(split, sample.project_index, sample.frame.id, rel,
                          [obj.annotation_id], [obj.class_name]), [(obj.class_name, obj.shape)])

    def write_augmented(self, sample: Sample, image, label: str, k: int,
                        annotation_ids: list[int]):
        suffix = f"_a{annotation_ids[0]}" if annotation_ids else ""
        name = self.file_name(sample, f"{suffix}_aug{k:02d}")
        rel = f"train/{self.plan.folders[label]}/{name}"
        self.write_image(rel, image)
        return (_Entry("train", sample.project_index, sample.frame.id, rel, annotation_ids,
                       [label], augmented_from=self.file_name(sample, suffix)), [])

    def data_yaml(self) -> dict:
        return {"train": "train", "val": "val", "test": "test",
                "nc": len(self.plan.classes), "names": dict(enumerate(self.plan.classes)),
                "folders": {self.plan.folders[n]: n for n in self.plan.classes}}


_WRITERS = {"detect": _YoloWriter, "segment": _YoloWriter,
            "classify": _FolderWriter, "crops": _FolderWriter}


def _imread(path: Path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError("cannot read frame image", path=path,
                           hint="re-capture the frame or delete it from the project")
    return image


def _crop(image, box: Box, padding: float):
    h, w = image.shape[:2]
    px, py = box.width * padding, box.height * padding
    x1, y1 = max(int(box.x1 - px), 0), max(int(box.y1 - py), 0)
    x2, y2 = min(int(round(box.x2 + px + 0.4999)), w), min(int(round(box.y2 + py + 0.4999)), h)
    return image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]


# ---- oversampling --------------------------------------------------------------------

def _oversample(writer: _Writer, plan: _Plan, spec: DatasetSpec, report: ReportBuilder,
                progress: Progress | None) -> list[_Entry]:
    """Augmented copies of training items of the classes with a factor > 1."""
    factors = spec.augment.factors
    pipeline = augment_mod.build_pipeline(spec.augment.pipeline, seed=spec.seed)
    entries = []
    for sample in plan.splits["train"]:
        labels = sample.labels()
        factor = max((factors.get(name, 1) for name in labels), default=1)
        if factor <= 1:
            continue
        for entry, shapes in _augmented_copies(writer, sample, pipeline, factor, spec):
            entries.append(entry)
            report.add_image("train", entry.labels, shapes, augmented=True)
        if progress:
            progress("augment", len(entries), 0)
    return entries


def _augmented_copies(writer, sample: Sample, pipeline, factor: int, spec: DatasetSpec):
    image = _imread(sample.image)
    if spec.task == "classify":
        for k in range(1, factor):
            out, _ = augment_mod.augment(pipeline, image, [])
            yield writer.write_augmented(sample, out, sample.tag, k, [])
        return
    if spec.task == "crops":
        for obj in sample.objects:
            if spec.augment.factors.get(obj.class_name, 1) <= 1:
                continue
            crop = _crop(image, _bbox(obj.shape), spec.crop_padding)
            for k in range(1, spec.augment.factors[obj.class_name]):
                out, _ = augment_mod.augment(pipeline, crop, [])
                yield writer.write_augmented(sample, out, obj.class_name, k,
                                             [obj.annotation_id])
        return
    shapes = [LabelledShape(o.class_name, o.shape) for o in sample.objects]
    for k in range(1, factor):
        out, moved = augment_mod.augment(pipeline, image, shapes)
        if spec.task == "segment":
            moved = [s for s in moved if isinstance(s.shape, Polygon)]
        yield writer.write_augmented(sample, out, moved, k, [])
