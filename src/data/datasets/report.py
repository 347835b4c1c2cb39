"""report.json and report.md of a dataset snapshot: what went where, and what was left out."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from src.data.datasets.spec import SPLITS
from src.data.geometry import Box, Polygon

# COCO's size buckets, by the square root of the box area in pixels.
SIZE_BUCKETS = (("small (<32 px)", 32.0), ("medium (32-96 px)", 96.0), ("large (>=96 px)", None))


def box_size_stats(boxes: list[Box]) -> dict:
    """Count, width/height min/median/max and COCO size buckets of some boxes (pixels)."""
    if not boxes:
        return {"count": 0}
    corners = np.array([(b.x1, b.y1, b.x2, b.y2) for b in boxes], dtype=np.float64)
    widths = np.maximum(corners[:, 2] - corners[:, 0], 0)
    heights = np.maximum(corners[:, 3] - corners[:, 1], 0)
    sides = np.sqrt(widths * heights)
    buckets, low = {}, -1.0
    for name, top in SIZE_BUCKETS:
        high = np.inf if top is None else top
        buckets[name] = int(((sides >= low) & (sides < high)).sum()) if low >= 0 \
            else int((sides < high).sum())
        low = high
    return {"count": len(boxes), "width_px": _spread(widths), "height_px": _spread(heights),
            "buckets": buckets}


def _spread(values: np.ndarray) -> dict:
    return {"min": round(float(values.min()), 2), "median": round(float(np.median(values)), 2),
            "max": round(float(values.max()), 2)}


class ReportBuilder:
    """Collects counts while a snapshot is written."""

    def __init__(self, class_names: list[str]) -> None:
        self.class_names = class_names
        self.instances = {name: Counter() for name in class_names}
        self.images: Counter = Counter()
        self.background: Counter = Counter()
        self.augmented_images: Counter = Counter()
        self.augmented_instances: dict[str, Counter] = defaultdict(Counter)
        self.boxes: dict[str, list[Box]] = defaultdict(list)

    def add_image(self, split: str, labels: list[str], shapes=(), *,
                  augmented: bool = False) -> None:
        if augmented:
            self.augmented_images[split] += 1
            for label in labels:
                self.augmented_instances[label][split] += 1
            return
        self.images[split] += 1
        if not labels:
            self.background[split] += 1
        for label in labels:
            self.instances[label][split] += 1
        for label, shape in shapes:
            self.boxes[label].append(shape.bbox() if isinstance(shape, Polygon) else shape)

    def to_dict(self, **extra) -> dict:
        return {
            "classes": self.class_names,
            "instances": {name: {s: self.instances[name].get(s, 0) for s in SPLITS}
                          for name in self.class_names},
            "images": {s: self.images.get(s, 0) for s in SPLITS},
            "background_images": {s: self.background.get(s, 0) for s in SPLITS},
            "augmented": {
                "images": {s: self.augmented_images.get(s, 0) for s in SPLITS},
                "instances": {n: dict(c) for n, c in sorted(self.augmented_instances.items())}},
            "box_sizes": {name: box_size_stats(self.boxes.get(name, []))
                          for name in self.class_names},
            **extra,
        }


def to_markdown(report: dict) -> str:
    """A human-readable report.md."""
    lines = [f"# Dataset {report['name']} v{report['version']} ({report['task']})", "",
             f"Split {report['split']['ratios']} (seed {report['split']['seed']}, grouped by "
             f"{report['split']['group_by']}), content hash `{report['content_hash'][:16]}`.", "",
             "## Instances per class and split", "",
             "| class | " + " | ".join(SPLITS) + " | total |",
             "|---|" + "---:|" * (len(SPLITS) + 1)]
    for name, counts in report["instances"].items():
        values = [counts[s] for s in SPLITS]
        lines.append(f"| {name} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")
    images = [report["images"][s] for s in SPLITS]
    what = "crops" if report["task"] == "crops" else "images"
    lines.append(f"| *{what}* | " + " | ".join(map(str, images)) + f" | {sum(images)} |")
    background = [report["background_images"][s] for s in SPLITS]
    if any(background):
        lines.append("| *background* | " + " | ".join(map(str, background))
                     + f" | {sum(background)} |")
    lines += ["", "## Box sizes (pixels)", "",
              "| class | count | width min/median/max | height min/median/max | "
              + " | ".join(name for name, _ in SIZE_BUCKETS) + " |",
              "|---|---:|---|---|" + "---:|" * len(SIZE_BUCKETS)]
    for name, stats in report["box_sizes"].items():
        if not stats["count"]:
            continue
        w, h = stats["width_px"], stats["height_px"]
        lines.append(f"| {name} | {stats['count']} | {w['min']}/{w['median']}/{w['max']} | "
                     f"{h['min']}/{h['median']}/{h['max']} | "
                     + " | ".join(str(v) for v in stats["buckets"].values()) + " |")
    lines += ["", "## Classes", ""]
    for source, target in report["mapping"].items():
        lines.append(f"- {source} → {target}" if source != target else f"- {source}")
    for name in report["dropped"]:
        lines.append(f"- {name}: dropped")
    for name, folder in report.get("folders", {}).items():
        if name != folder:
            lines.append(f"- folder of '{name}': `{folder}` (encoded)")
    augmented = report["augmented"]
    if augmented["instances"]:
        lines += ["", f"## Oversampling ({report['config']['augment']['pipeline']})", ""]
        for name, counts in augmented["instances"].items():
            lines.append(f"- {name}: {sum(counts.values())} augmented instances in train")
    lines += ["", "## Skipped", ""]
    lines += [f"- {reason}: {count}" for reason, count in sorted(report["skipped"].items())]
    if not report["skipped"]:
        lines.append("- nothing")
    lines += [f"- note: {note}" for note in report.get("notes", [])]
    return "\n".join(lines) + "\n"
