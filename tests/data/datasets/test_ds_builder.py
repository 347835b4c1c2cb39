"""Building snapshots from real projects: layouts, splits, checks, reports, atomicity."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import cv2
import pytest
import yaml

from dataset_synth import add_source, box, poly, read_manifest, tag
from src.data.datasets import AugmentSpec, DatasetSpec, build_dataset, resolve_dataset
from src.data.datasets import builder as builder_mod
from src.db import datasets as datasets_repo
from src.db.project import Project
from src.errors import DatasetError

REPO = Path(__file__).resolve().parents[3]


def _labels(path: Path, split: str) -> dict[str, list[list[float]]]:
    out = {}
    for f in sorted((path / "labels" / split).glob("*.txt")):
        out[f.stem] = [[float(v) for v in line.split()] for line in f.read_text().splitlines()]
    return out


def test_detect_snapshot_layout_labels_and_record(mixed_project):
    record, path = build_dataset(mixed_project, DatasetSpec(name="det", task="detect"))
    assert path == mixed_project.datasets_dir / "det" / "v1" and record.version == 1
    data = yaml.safe_load((path / "data.yaml").read_text())
    assert "path" not in data and data["names"] == {0: "car", 1: "person", 2: "bike"}
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val",
                                                          "images/test")
    manifest = read_manifest(path)
    assert manifest["content_hash"] == record.content_hash and manifest["seed"] == 42
    assert len(manifest["entries"]) == 120
    # one label line per accepted shape; the person polygon became its bounding box
    entry = next(e for e in manifest["entries"] if len(e["labels"]) == 2
                 and "person" in e["labels"])
    stem = Path(entry["file"]).stem
    lines = _labels(path, entry["split"])[stem]
    person = next(line for line in lines if line[0] == 1)
    assert len(person) == 5 and person[3] == pytest.approx(14 / 96, abs=1e-6)
    assert person[4] == pytest.approx(14 / 64, abs=1e-6)
    # images are hard links of the frames, not copies
    image = path / entry["file"]
    frame_file = next(mixed_project.frames_dir.rglob("*.png"))
    if frame_file.stat().st_dev == image.stat().st_dev:
        assert image.stat().st_nlink >= 2
    stored = datasets_repo.get_dataset(mixed_project.conn, "det")
    assert stored.content_hash == record.content_hash and stored.task == "detect"
    report = json.loads((path / "report.json").read_text())
    assert sum(report["instances"]["car"].values()) == 120
    assert all(report["instances"]["bike"][s] > 0 for s in ("train", "val", "test"))
    assert "| bike |" in (path / "report.md").read_text()


def test_same_inputs_and_seed_give_byte_identical_split_lists(mixed_project):
    _, first = build_dataset(mixed_project, DatasetSpec(name="same", task="detect", seed=5))
    _, second = build_dataset(mixed_project, DatasetSpec(name="same", task="detect", seed=5))
    assert second.name == "v2"
    for split in ("train", "val", "test"):
        assert (first / "splits" / f"{split}.txt").read_bytes() == \
            (second / "splits" / f"{split}.txt").read_bytes()
    assert read_manifest(first)["content_hash"] == read_manifest(second)["content_hash"]
    _, other = build_dataset(mixed_project, DatasetSpec(name="other", task="detect", seed=6))
    assert (other / "splits" / "train.txt").read_bytes() != \
        (first / "splits" / "train.txt").read_bytes()


@pytest.mark.parametrize("group_by, block", [("block", 10), ("source", 10), ("none", 1)])
def test_no_frame_or_group_in_two_splits(mixed_project, group_by, block):
    spec = DatasetSpec(name=f"g-{group_by}", task="detect", group_by=group_by,
                       block_size=block, split=(0.5, 0.5, 0.0) if group_by == "source"
                       else (0.7, 0.2, 0.1))
    _, path = build_dataset(mixed_project, spec)
    entries = read_manifest(path)["entries"]
    split_of = {}
    for e in entries:
        assert split_of.setdefault(e["frame_id"], e["split"]) == e["split"]
    assert len(split_of) == len(entries) == 120
    frame_rank = {}
    for e in entries:  # frame ids were inserted in (source, index) order, 60 per source
        frame_rank[e["frame_id"]] = ((e["frame_id"] - 1) // 60, (e["frame_id"] - 1) % 60)
    groups = defaultdict(set)
    for fid, (source, rank) in frame_rank.items():
        key = (source,) if group_by == "source" else (source, rank // block)
        groups[key].add(split_of[fid])
    assert all(len(splits) == 1 for splits in groups.values())
    if group_by == "source":
        assert {next(iter(s)) for s in groups.values()} == {"train", "val"}


def test_class_selection_mapping_and_drop_are_applied_and_recorded(mixed_project):
    spec = DatasetSpec(name="mapped", task="detect", mapping={"car": "vehicle",
                                                              "bike": "vehicle"},
                       drop=["person"])
    _, path = build_dataset(mixed_project, spec)
    data = yaml.safe_load((path / "data.yaml").read_text())
    assert data["names"] == {0: "vehicle"}
    report = json.loads((path / "report.json").read_text())
    assert report["mapping"] == {"car": "vehicle", "bike": "vehicle"}
    assert report["dropped"] == ["person"]
    assert sum(report["instances"]["vehicle"].values()) == 120 + len(
        [i for i in range(60) if i % 7 == 3]) * 2
    for split in ("train", "val", "test"):
        for lines in _labels(path, split).values():
            assert {line[0] for line in lines} <= {0}
    _, only = build_dataset(mixed_project, DatasetSpec(name="only", task="detect",
                                                       classes=["person"]))
    assert yaml.safe_load((only / "data.yaml").read_text())["names"] == {0: "person"}
    assert len(read_manifest(only)["entries"]) == 60


def test_checks_before_writing_name_the_problem(project):
    add_source(project, "a", [[box("car", 5, 5)] for _ in range(30)]
               + [[box("bike", 5, 5, status="proposed")]])
    with pytest.raises(DatasetError, match="unknown class 'truck'.*known classes: car, bike"):
        build_dataset(project, DatasetSpec(name="x", task="detect", classes=["truck"]))
    with pytest.raises(DatasetError, match="class 'bike' has no accepted"):
        build_dataset(project, DatasetSpec(name="x", task="detect", classes=["bike"]))
    with pytest.raises(DatasetError, match="nothing to build"):
        build_dataset(project, DatasetSpec(name="x", task="segment"))
    with pytest.raises(DatasetError, match=r"class 'car' has 6 instance\(s\) in val, fewer "
                                           r"than the minimum 7 \(train 21, val 6, test 3\)"):
        build_dataset(project, DatasetSpec(name="x", task="detect", min_per_class=7,
                                           group_by="none"))
    assert not (project.datasets_dir / "x").exists() or not any(
        (project.datasets_dir / "x").iterdir())
    assert datasets_repo.list_datasets(project.conn) == []


def test_only_accepted_annotations_and_capped_background(project):
    frames = [[box("car", 5, 5), box("car", 40, 20, status="proposed")] for _ in range(20)]
    frames += [[] for _ in range(20)]                                  # empty frames
    frames += [[box("car", 5, 5, status="proposed")] for _ in range(5)]  # unreviewed
    add_source(project, "a", frames)
    _, path = build_dataset(project, DatasetSpec(name="bg", task="detect", background=0.25,
                                                 min_per_class=0, group_by="none"))
    manifest = read_manifest(path)
    report = json.loads((path / "report.json").read_text())
    assert sum(report["background_images"].values()) == 5                # 25% of 20
    assert report["skipped"]["background frames over the cap"] == 15
    unreviewed = set(range(41, 46))
    assert not unreviewed & {e["frame_id"] for e in manifest["entries"]}
    for split in ("train", "val", "test"):
        for lines in _labels(path, split).values():
            assert len(lines) <= 1                                       # proposals left out


def test_segment_uses_polygons_and_counts_skipped_boxes(mixed_project):
    _, path = build_dataset(mixed_project, DatasetSpec(name="seg", task="segment"))
    assert yaml.safe_load((path / "data.yaml").read_text())["names"] == {0: "person"}
    report = json.loads((path / "report.json").read_text())
    assert report["skipped"]["boxes in a segment dataset"] == 120 + 2 * 9
    assert report["skipped"]["frames whose only shapes were boxes"] == 60
    for split in ("train", "val", "test"):
        for lines in _labels(path, split).values():
            assert all(len(line) == 7 for line in lines)


def test_classify_writes_image_folders_by_tag(project):
    frames = [[tag("day"), box("car", 5, 5)] for _ in range(20)]
    frames += [[tag("night")] for _ in range(20)]
    frames += [[tag("day"), tag("night")], []]
    add_source(project, "a", frames)
    _, path = build_dataset(project, DatasetSpec(name="cls", task="classify",
                                                 group_by="none"))
    data = yaml.safe_load((path / "data.yaml").read_text())
    assert data["names"] == {0: "day", 1: "night"} and data["train"] == "train"
    counts = {s: {c: len(list((path / s / c).iterdir())) for c in ("day", "night")}
              for s in ("train", "val", "test")}
    assert sum(sum(c.values()) for c in counts.values()) == 40
    assert all(v > 0 for c in counts.values() for v in c.values())
    report = json.loads((path / "report.json").read_text())
    assert report["skipped"] == {"frames with several tags": 1, "frames without a tag": 1}


def test_crops_pad_skip_small_and_encode_unsafe_class_names(project):
    frames = [[box("a/b", 10, 10, 20, 10), box("..", 50, 30, 30, 20),
               box("a/b", 80, 50, 4, 4)] for _ in range(20)]
    add_source(project, "a", frames)
    _, path = build_dataset(project, DatasetSpec(name="crops", task="crops", crop_padding=0.5,
                                                 crop_min_size=6, group_by="none"))
    report = json.loads((path / "report.json").read_text())
    assert report["folders"] == {"..": "%2E%2E", "a/b": "a%2Fb"}
    assert report["skipped"] == {"crops under 6 px": 20}
    crop_files = list((path / "train" / "a%2Fb").iterdir())
    assert crop_files and all(f.parent.parent.parent == path for f in crop_files)
    image = cv2.imread(str(crop_files[0]))
    assert image.shape[:2] == (20, 40)   # 10x20 box + 50% padding on each side
    data = yaml.safe_load((path / "data.yaml").read_text())
    assert data["names"] == {0: "..", 1: "a/b"}   # sorted by folder name, as ImageFolder does


def test_projects_combine_with_classes_matched_by_name(tmp_path, project):
    add_source(project, "a", [[box("Car", 5, 5)] for _ in range(20)])
    other = Project.open(tmp_path / "other")
    add_source(other, "b", [[box("car", 5, 5), box("bike", 40, 30)] for _ in range(20)])
    other.close()
    spec = DatasetSpec(name="both", task="detect", group_by="none",
                       sources=[project.root, tmp_path / "other", tmp_path / "other" / "."])
    record, path = build_dataset(project, spec)
    assert yaml.safe_load((path / "data.yaml").read_text())["names"] == {0: "Car", 1: "bike"}
    entries = read_manifest(path)["entries"]
    assert {e["project"] for e in entries} == {0, 1} and len(entries) == 40
    assert read_manifest(path)["projects"] == [str(project.root), str(tmp_path / "other")]
    with pytest.raises(DatasetError, match="cannot read source project"):
        build_dataset(project, DatasetSpec(name="x", task="detect",
                                           sources=[tmp_path / "missing"]))


def test_oversampling_writes_augmented_copies_into_train_only(mixed_project):
    spec = DatasetSpec(name="aug", task="detect", augment=AugmentSpec("heavy", {"bike": 4}))
    _, path = build_dataset(mixed_project, spec)
    entries = read_manifest(path)["entries"]
    augmented = [e for e in entries if e["augmented_from"]]
    train_bikes = [e for e in entries if not e["augmented_from"] and e["split"] == "train"
                   and "bike" in e["labels"]]
    assert len(augmented) == 3 * len(train_bikes) > 0
    assert all(e["split"] == "train" for e in augmented)
    for e in augmented:
        lines = _labels(path, "train")[Path(e["file"]).stem]
        assert all(0 <= v <= 1 for line in lines for v in line[1:])
    report = json.loads((path / "report.json").read_text())
    assert report["augmented"]["images"]["train"] == len(augmented)
    assert report["config"]["augment"] == {"pipeline": "heavy", "factors": {"bike": 4}}
    with pytest.raises(DatasetError, match="cannot oversample unknown class 'boat'"):
        build_dataset(mixed_project, DatasetSpec(name="aug", task="detect",
                                                 augment=AugmentSpec("heavy", {"boat": 2})))


def test_a_failed_build_leaves_no_version_folder_or_record(mixed_project, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")
    with monkeypatch.context() as patch:
        patch.setattr(builder_mod, "_write_split_lists", broken)
        with pytest.raises(OSError, match="disk full"):
            build_dataset(mixed_project, DatasetSpec(name="broken", task="detect"))
    assert list((mixed_project.datasets_dir / "broken").iterdir()) == []
    missing = next(mixed_project.frames_dir.rglob("000007.png"))
    missing.unlink()
    with pytest.raises(DatasetError, match="frame image is missing") as info:
        build_dataset(mixed_project, DatasetSpec(name="broken", task="detect"))
    assert str(missing) in str(info.value)
    assert list((mixed_project.datasets_dir / "broken").iterdir()) == []
    assert datasets_repo.list_datasets(mixed_project.conn) == []


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills with SIGKILL (POSIX)")
def test_a_killed_build_leaves_no_version_and_the_next_build_cleans_up(mixed_project):
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from src.data.datasets import DatasetSpec, build_dataset
        from src.data.datasets import builder
        from src.db.project import Project
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        builder._Writer.content_hash = die
        build_dataset(Project.open({str(mixed_project.root)!r}),
                      DatasetSpec(name="killed", task="detect"))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == -9
    folder = mixed_project.datasets_dir / "killed"
    leftovers = [p.name for p in folder.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".build-")
    assert datasets_repo.list_datasets(mixed_project.conn) == []
    record, path = build_dataset(mixed_project, DatasetSpec(name="killed", task="detect"))
    assert record.version == 1 and [p.name for p in folder.iterdir()] == ["v1"]


def test_resolve_dataset_by_name_and_version(mixed_project):
    build_dataset(mixed_project, DatasetSpec(name="r", task="detect"))
    build_dataset(mixed_project, DatasetSpec(name="r", task="detect", seed=1))
    assert resolve_dataset(mixed_project, "r")[0].version == 2
    record, path = resolve_dataset(mixed_project, "r:v1")
    assert record.version == 1 and path == mixed_project.datasets_dir / "r" / "v1"
    with pytest.raises(DatasetError, match=r"no dataset 'r' version 3.*known datasets: r:v1, r:v2"):
        resolve_dataset(mixed_project, "r:v3")
    with pytest.raises(DatasetError, match="no dataset 'nope'"):
        resolve_dataset(mixed_project, "nope")


def test_a_version_folder_left_without_a_record_is_replaced_not_skipped(mixed_project):
    """A killed build could leave v1 without its row; versions must not skip past it."""
    (mixed_project.datasets_dir / "v" / "v1").mkdir(parents=True)
    (mixed_project.datasets_dir / "v" / "v1" / "half-written.txt").write_text("x")
    record, path = build_dataset(mixed_project, DatasetSpec(name="v", task="detect"))
    assert record.version == 1 and path.name == "v1"
    assert (path / "data.yaml").is_file() and not (path / "half-written.txt").exists()


@pytest.mark.parametrize("task", ["segment", "crops", "classify"])
def test_oversampling_for_polygons_crops_and_tags(project, task):
    frames = [[tag("day"), poly("person", 10, 10, 20), box("car", 50, 20, 20, 20)]
              for _ in range(20)]
    frames += [[tag("night"), box("car", 50, 20, 20, 20)] for _ in range(20)]
    add_source(project, "a", frames)
    rare = {"segment": "person", "crops": "person", "classify": "day"}[task]
    _, path = build_dataset(project, DatasetSpec(
        name=f"o-{task}", task=task, group_by="none", augment=AugmentSpec("heavy", {rare: 3})))
    entries = read_manifest(path)["entries"]
    augmented = [e for e in entries if e["augmented_from"]]
    originals = [e for e in entries if not e["augmented_from"] and e["split"] == "train"
                 and rare in e["labels"]]
    assert len(augmented) == 2 * len(originals) > 0
    for e in augmented:
        file = path / e["file"]
        assert e["split"] == "train" and file.is_file() and cv2.imread(str(file)) is not None
        if task == "segment":
            label = path / "labels" / "train" / (file.stem + ".txt")
            for line in label.read_text().splitlines():
                values = [float(v) for v in line.split()[1:]]
                assert len(values) >= 6 and all(0 <= v <= 1 for v in values)
        else:
            assert file.parent.name == rare


def test_bulk_annotation_reader_matches_the_repository(mixed_project):
    from src.db import annotations as annotations_repo
    anns = annotations_repo.list_annotations(mixed_project.conn)
    annotations_repo.set_status(mixed_project.conn, [anns[0].id], "proposed")
    for status in (None, "accepted", "proposed"):
        expected = sorted(annotations_repo.list_annotations(mixed_project.conn, status=status),
                          key=lambda a: a.id)
        assert list(annotations_repo.iter_annotations(mixed_project.conn,
                                                      status=status)) == expected


def test_builds_keep_object_classes_and_frame_tags_apart(project):
    from src.db import annotations as annotations_repo
    from src.db import classes as classes_repo
    from src.db.records import Annotation
    frames = [[tag("day"), box("car", 5, 5)] for _ in range(12)]
    frames += [[tag("night"), box("car", 9, 9)] for _ in range(12)]
    made = add_source(project, "a", frames)
    night = classes_repo.get_class_by_name(project.conn, "night")
    # A box given a frame tag's class, as older versions allowed: detect builds ignore it.
    annotations_repo.add_annotation(project.conn,
                                    Annotation(made[0].id, night.id, "box", [1, 1, 20, 20]))
    _, det = build_dataset(project, DatasetSpec(name="det", task="detect", group_by="none"))
    assert yaml.safe_load((det / "data.yaml").read_text())["names"] == {0: "car"}
    _, cls = build_dataset(project, DatasetSpec(name="cls", task="classify", group_by="none"))
    assert yaml.safe_load((cls / "data.yaml").read_text())["names"] == {0: "day", 1: "night"}
