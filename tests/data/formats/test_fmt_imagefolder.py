"""Classify and crops dataset versions export as image folders plus labels.csv, which
torchvision's ImageFolder reads with the classes the CSV names."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
from dataset_synth import add_source, box, read_manifest, tag  # noqa: E402

from format_files import digest  # noqa: E402
from src.data.datasets import DatasetSpec, build_dataset  # noqa: E402
from src.data.formats import export_annotations  # noqa: E402
from src.errors import DatasetError  # noqa: E402

NAMES = ["rusty bolt", "Käfer", "type 2"]


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("task", ["classify", "crops"])
def test_image_folder_export_with_csv(project, tmp_path, task):
    if task == "classify":
        frames = [[tag(NAMES[i % 3])] for i in range(18)]
    else:
        frames = [[box(NAMES[k], 4 + 24 * k, 10 + i % 20) for k in range(3)] for i in range(6)]
    add_source(project, "cam", frames)
    _, snapshot = build_dataset(project, DatasetSpec(name="ds", task=task, group_by="none"))
    summary = export_annotations(project, tmp_path / "out", "imagefolder", dataset="ds")
    out = tmp_path / "out"
    rows = _csv(out / "labels.csv")
    manifest = read_manifest(snapshot)["entries"]
    assert summary["images"] == len(rows) == len(manifest)
    assert sorted((r["file"], r["class"], r["split"]) for r in rows) == \
        sorted((e["file"], e["labels"][0], e["split"]) for e in manifest)
    assert {r["class"] for r in rows} == set(NAMES) and {r["split"] for r in rows} == \
        {"train", "val", "test"}
    for row in rows:                           # the same bytes, under the same paths
        assert digest(out / row["file"]) == digest(snapshot / row["file"])
    # A third-party reader: torchvision's ImageFolder, classes mapped back by data.yaml.
    from torchvision.datasets import ImageFolder
    folders = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))["folders"]
    by_file = {r["file"]: r["class"] for r in rows}
    for split in ("train", "val", "test"):
        dataset = ImageFolder(str(out / split))
        assert len(dataset) == sum(1 for r in rows if r["split"] == split)
        for file, index in dataset.samples:
            rel = Path(file).relative_to(out).as_posix()
            assert folders[dataset.classes[index]] == by_file[rel]


def test_image_folder_export_refuses_the_project_and_box_datasets(project, tmp_path):
    add_source(project, "cam", [[box(NAMES[0], 4, 4)] for _ in range(6)])
    build_dataset(project, DatasetSpec(name="det", task="detect", group_by="none"))
    with pytest.raises(DatasetError, match="imagefolder exports a classify or crops"):
        export_annotations(project, tmp_path / "a", "imagefolder")
    with pytest.raises(DatasetError, match="is a detect dataset, not image folders"):
        export_annotations(project, tmp_path / "b", "imagefolder", dataset="det")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_exports_image_folders_and_refuses_the_project_in_one_line(project, tmp_path,
                                                                         capsys):
    from src.cli import main
    add_source(project, "cam", [[tag(NAMES[i % 3])] for i in range(18)])
    build_dataset(project, DatasetSpec(name="tags", task="classify", group_by="none"))
    root = str(project.root)
    assert main(["--project", root, "export", str(tmp_path / "a"), "--format",
                 "imagefolder"]) == 2
    err = capsys.readouterr().err
    assert "imagefolder exports a classify or crops" in err and len(err.strip().splitlines()) == 1
    assert main(["--project", root, "export", str(tmp_path / "b"), "--format", "imagefolder",
                 "--dataset", "tags"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "imagefolder" and summary["classes"] == 3
    assert len(_csv(tmp_path / "b" / "labels.csv")) == summary["images"] == 18
