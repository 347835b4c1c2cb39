"""What goes into a dataset: frames, their accepted shapes or tag, classes after mapping."""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from src.data.datasets.spec import TASK_KINDS, DatasetSpec
from src.data.datasets.splits import group_key
from src.data.geometry import Box, Polygon, clip_box, clip_polygon, shape_of
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import dataset_exclusions
from src.db import frames as frames_repo
from src.db.project import Project
from src.db.records import Annotation, Frame
from src.errors import DatasetError, ProjectError


@dataclass
class SampleObject:
    """A shape of a dataset class, in original-frame pixels, clipped to the frame."""
    class_name: str
    shape: Box | Polygon
    annotation_id: int


@dataclass
class Sample:
    """A frame that goes into the dataset with what it is labelled with."""
    project_index: int
    frame: Frame
    image: Path
    group: tuple
    objects: list[SampleObject] = field(default_factory=list)
    tag: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.project_index, self.frame.id)

    def labels(self) -> Counter:
        """Class -> instances in this frame (computed once; call forget_labels() after
        changing `objects`)."""
        counts = self.__dict__.get("_labels")
        if counts is None:
            counts = Counter({self.tag: 1}) if self.tag is not None else \
                Counter(o.class_name for o in self.objects)
            self.__dict__["_labels"] = counts
        return counts

    def forget_labels(self) -> None:
        self.__dict__.pop("_labels", None)


@dataclass
class Selection:
    samples: list[Sample]
    class_names: list[str]                  # dataset classes, in index order
    mapping: dict[str, str]                 # source class -> dataset class (kept ones)
    dropped: list[str]                      # source classes (of the task's kinds) left out
    skipped: Counter                        # reason -> count
    projects: list[Path]


def select(project: Project, spec: DatasetSpec) -> Selection:
    """Read the source projects and apply class selection, mapping and background rules."""
    # A project named twice (or as . and by its path) is read once.
    roots = list(dict.fromkeys(Path(p).expanduser().resolve() for p in spec.sources))
    roots = roots or [project.root]
    loaded = [_load(project, root) for root in roots]
    names = _class_names(loaded)
    resolve = _class_resolver(spec, names)
    kinds = spec.used_kinds
    skipped: Counter = Counter()
    labelled, background = [], []
    for index, source in enumerate(loaded):
        targets = {cid: resolve(name) if _kind_fits(source.class_kinds[cid], name, spec) else None
                   for cid, name in source.classes.items()}
        wanted = _frame_filter(spec, source, project)
        for frame, rank in source.frames:
            if not wanted(frame.id, skipped):
                continue
            group = group_key(spec.group_by, index, frame.source_id, rank, frame.id,
                              spec.block_size)
            sample = Sample(index, frame, _image_path(source.root, frame), group)
            status = _fill(sample, source.accepted.get(frame.id, []), targets, kinds,
                           spec, skipped)
            if status == "background" and frame.id in source.pending:
                status = "out"  # unreviewed proposals: not known to be empty
            if status == "labelled":
                labelled.append(sample)
            elif status == "background":
                background.append(sample)
    used = _used_classes(labelled, names, resolve, spec)
    samples = labelled + _pick_background(background, len(labelled), spec, skipped)
    if not labelled:
        raise DatasetError(f"nothing to build: no frame has an accepted {' or '.join(kinds)}"
                           " of the selected classes", field="classes",
                           hint="annotate (or accept proposals) first, or select other classes")
    relevant = _names_with_kinds(loaded, kinds)
    mapping = {n: resolve(n) for n in relevant if resolve(n) in used}
    dropped = [n for n in relevant if resolve(n) is None]
    return Selection(samples, used, mapping, dropped, skipped, roots)


def _frame_filter(spec: DatasetSpec, source: "_Source", project: Project):
    """frame id, skipped counter -> whether the frame may go in: never an excluded frame;
    in the current project, only the frames asked for (when a selection is given)."""
    chosen = set(spec.frames) if spec.frames is not None and source.root == project.root \
        else None

    def wanted(frame_id: int, skipped: Counter) -> bool:
        if frame_id in source.excluded:
            skipped["frames excluded from datasets"] += 1
            return False
        if chosen is not None and frame_id not in chosen:
            skipped["frames outside the chosen selection"] += 1
            return False
        return True
    return wanted


def _kind_fits(class_kind: str, name: str, spec: DatasetSpec) -> bool:
    """Detect, segment and crops builds use object classes; classify builds use frame tags,
    and an object class only when asked for by name (--classes)."""
    if spec.task != "classify":
        return class_kind == "object"
    named = {n.casefold() for n in spec.classes or []}
    return class_kind == "tag" or name.casefold() in named


def _names_with_kinds(loaded: list[_Source], kinds) -> list[str]:
    """Source class names (first spelling) with an accepted annotation of these kinds."""
    seen: dict[str, str] = {}
    for source in loaded:
        for class_id, kind in sorted(source.kinds):
            if kind in kinds:
                name = source.classes[class_id]
                seen.setdefault(name.casefold(), name)
    order = {n.casefold(): i for i, n in enumerate(_class_names(loaded))}
    return sorted(seen.values(), key=lambda n: order[n.casefold()])


@dataclass
class _Source:
    """What a build reads from one project."""
    root: Path
    classes: dict[int, str]
    class_kinds: dict[int, str]              # class id -> 'object' | 'tag'
    frames: list[tuple[Frame, int]]          # (frame, rank among its source's frames)
    accepted: dict[int, list[Annotation]]    # frame id -> accepted annotations
    pending: set[int]                        # frames with unreviewed proposals
    kinds: set[tuple[int, str]]              # (class id, kind) of accepted annotations
    excluded: set[int] = field(default_factory=set)   # frames ticked "exclude from datasets"


def _load(current: Project, root: Path) -> _Source:
    if root == current.root:
        return _read(current.conn, root)
    try:
        other = Project.open(root, create=False)
    except ProjectError as exc:
        raise DatasetError(f"cannot read source project ({exc.message})", path=root,
                           field="from", hint="pass the folder that holds project.db") from exc
    try:
        return _read(other.conn, root)
    finally:
        other.close()


def _read(conn, root: Path) -> _Source:
    listed = classes_repo.list_classes(conn)
    classes = {c.id: c.name for c in listed}
    frames, ranks = [], Counter()
    for frame in frames_repo.list_frames(conn):
        frames.append((frame, ranks[frame.source_id]))
        ranks[frame.source_id] += 1
    accepted, pending, kinds = defaultdict(list), set(), set()
    for ann in annotations_repo.iter_annotations(conn):
        if ann.status == "accepted":
            accepted[ann.frame_id].append(ann)
            kinds.add((ann.class_id, ann.kind))
        else:
            pending.add(ann.frame_id)
    return _Source(root, classes, {c.id: c.kind for c in listed}, frames, accepted, pending,
                   kinds, dataset_exclusions.excluded_frame_ids(conn))


def _class_names(loaded) -> list[str]:
    """Class names of every source project, matched case-insensitively, first spelling kept."""
    seen: dict[str, str] = {}
    for source in loaded:
        for name in source.classes.values():
            seen.setdefault(name.casefold(), name)
    return list(seen.values())


def _class_resolver(spec: DatasetSpec, names: list[str]):
    known = {n.casefold(): n for n in names}

    def check(name: str, field_name: str) -> str:
        if name.casefold() not in known:
            raise DatasetError(f"unknown class '{name}'", field=field_name,
                               hint=f"known classes: {', '.join(names) or 'none'}")
        return known[name.casefold()]

    keep = None if spec.classes is None else {check(n, "classes").casefold()
                                              for n in spec.classes}
    drop = {check(n, "drop").casefold() for n in spec.drop}
    mapping = {check(k, "map").casefold(): v for k, v in spec.mapping.items()}

    def resolve(name: str) -> str | None:
        key = name.casefold()
        if key in drop or (keep is not None and key not in keep):
            return None
        return mapping.get(key, known.get(key, name))
    return resolve


def _image_path(root: Path, frame: Frame) -> Path:
    path = Path(frame.image_path)
    return path if path.is_absolute() else root / path


def _fill(sample: Sample, anns: list[Annotation], targets: dict[int, str | None], kinds,
          spec: DatasetSpec, skipped: Counter) -> str:
    """Put the frame's usable annotations on `sample`; say whether it is labelled,
    a background candidate, or left out."""
    task = spec.task
    tags, left_out = set(), 0
    w, h = sample.frame.width, sample.frame.height
    for ann in anns:
        target = targets[ann.class_id]
        if target is None:
            continue
        if ann.kind not in kinds:
            if task == "segment" and ann.kind == "box":
                _refuse_box(spec, sample)
                skipped["boxes in a segment dataset"] += 1
                left_out += 1
            elif ann.kind in TASK_KINDS[task]:
                skipped[f"{ann.kind} annotations (kind not chosen)"] += 1
            continue
        if ann.kind == "tag":
            tags.add(target)
            continue
        shape = _clipped(shape_of(ann), w, h)
        if shape is None:
            skipped["degenerate shapes (no area inside the frame)"] += 1
            continue
        sample.objects.append(SampleObject(target, shape, ann.id))
    if task == "classify":
        if len(tags) == 1:
            sample.tag = tags.pop()
            return "labelled"
        skipped["frames with several tags" if tags else "frames without a tag"] += 1
        return "out"
    if sample.objects:
        return "labelled"
    if left_out:
        skipped["frames whose only shapes were boxes"] += 1
        return "out"
    return "background"


def _refuse_box(spec: DatasetSpec, sample: Sample) -> None:
    if spec.segment_boxes == "reject":
        f = sample.frame
        raise DatasetError(
            f"frame {f.frame_index} of source {f.source_id} (id {f.id}) has a box: a segment"
            " dataset needs polygons", field="segment_boxes",
            hint="redraw it as a polygon, or skip boxes (--segment-boxes skip)")


def _clipped(shape, w: int, h: int):
    if isinstance(shape, Box):
        if 0 <= shape.x1 < shape.x2 <= w and 0 <= shape.y1 < shape.y2 <= h:
            return shape                      # the common case: nothing to clip
        box = clip_box(shape, w, h)
        return box if box.width > 0 and box.height > 0 else None
    poly = clip_polygon(shape, w, h)
    return poly if len(poly.points) >= 3 and poly.area > 0 else None


def _used_classes(labelled: list[Sample], names: list[str], resolve,
                  spec: DatasetSpec) -> list[str]:
    """Dataset classes in the order of their source classes; a class asked for by name
    that ends up with no instance is an error."""
    present = set()
    for sample in labelled:
        present.update(sample.labels())
    order = []
    for name in names:
        target = resolve(name)
        if target is not None and target in present and target not in order:
            order.append(target)
    for name in spec.classes or []:
        target = resolve(name)
        if target not in present:
            raise DatasetError(
                f"class '{name}' has no accepted {' or '.join(spec.used_kinds)}"
                f" annotation", field="classes",
                hint=f"classes with some: {', '.join(order) or 'none'}")
    return order


def _pick_background(candidates: list[Sample], labelled: int, spec: DatasetSpec,
                     skipped: Counter) -> list[Sample]:
    if spec.task == "classify" or spec.background <= 0:
        if candidates:
            skipped["frames without annotations (background not asked)"] += len(candidates)
        return []
    cap = int(spec.background * labelled)
    chosen = sorted(candidates, key=lambda s: s.key)
    random.Random(spec.seed).shuffle(chosen)
    if len(chosen) > cap:
        skipped["background frames over the cap"] += len(chosen) - cap
    return sorted(chosen[:cap], key=lambda s: s.key)
