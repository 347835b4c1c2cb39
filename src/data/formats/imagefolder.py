"""Classify and crops dataset versions as other tools read them: the snapshot's ImageFolder
layout as is (<split>/<class folder>/<image>, which torchvision's ImageFolder, timm and
ultralytics classify read), plus labels.csv (file, class, split) naming each image's class
as written, since a class folder name is %XX-encoded where the class name holds characters
a file system may refuse (see datasets/naming.py)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from src.atomic_files import write_text_atomic as write_text
from src.data.formats.files import place_file, read_json
from src.data.formats.model import SPLIT_NAMES
from src.errors import DatasetError

CSV_NAME = "labels.csv"


def write(snapshot: Path, out: Path) -> dict:
    """Link the snapshot's images into `out` under the same paths; write labels.csv and the
    snapshot's data.yaml (class names and folders)."""
    entries = _entries(snapshot / "manifest.json")
    for folder in sorted(p for split in SPLIT_NAMES for p in (snapshot / split).glob("*")
                         if p.is_dir()):
        (out / folder.relative_to(snapshot)).mkdir(parents=True, exist_ok=True)
    rows = []
    for file, label, split in entries:
        place_file(snapshot / file, out / file)
        rows.append((file, label, split))
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("file", "class", "split"))
    writer.writerows(rows)
    write_text(out / CSV_NAME, text.getvalue())
    write_text(out / "data.yaml", (snapshot / "data.yaml").read_text(encoding="utf-8"))
    per_split = {s: sum(1 for r in rows if r[2] == s) for s in SPLIT_NAMES}
    return {"images": len(rows), "splits": per_split}


def _entries(manifest_path: Path) -> list[tuple[str, str, str]]:
    """(file, class, split) of every image the manifest lists, augmented copies included."""
    manifest = read_json(manifest_path)
    entries = manifest.get("entries") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        raise DatasetError("the snapshot's manifest lists no entries", path=manifest_path,
                           hint="rebuild the dataset version")
    out = []
    for entry in entries:
        labels = entry.get("labels") or []
        if len(labels) != 1:
            raise DatasetError(f"entry {entry.get('file')!r} has {len(labels)} classes, an"
                               " image folder needs one", path=manifest_path,
                               hint="rebuild the dataset version")
        out.append((entry["file"], labels[0], entry["split"]))
    return out
