"""Which frames and which annotation kinds go into a build: frames excluded from datasets
(always left out, CLI too), a frame selection, kinds, boxes in a segment build."""
from __future__ import annotations

import json

import pytest

from dataset_synth import add_source, box, poly, read_manifest
from src.cli import main
from src.data.datasets import DatasetSpec, build_dataset
from src.data.datasets.spec import parse_frame_ids
from src.db import dataset_exclusions
from src.db import frames as frames_repo
from src.errors import DatasetError


def _frame_ids(path) -> set[int]:
    return {e["frame_id"] for e in read_manifest(path)["entries"]}


def test_excluded_frames_never_go_in_and_the_cli_honours_them(mixed_project, capsys):
    frames = frames_repo.list_frames(mixed_project.conn)
    excluded = [f.id for f in frames[:25]]
    dataset_exclusions.set_excluded(mixed_project.conn, excluded, True)
    _, path = build_dataset(mixed_project, DatasetSpec(name="det", task="detect"))
    ids = _frame_ids(path)
    assert ids and not ids & set(excluded)
    assert ids == {f.id for f in frames[25:]}
    report = json.loads((path / "report.json").read_text())
    assert report["skipped"]["frames excluded from datasets"] == 25

    assert main(["--project", str(mixed_project.root), "dataset", "build", "cli",
                 "--task", "detect", "--json"]) == 0
    cli_report = json.loads(capsys.readouterr().out)
    assert cli_report["skipped"]["frames excluded from datasets"] == 25
    assert not _frame_ids(mixed_project.datasets_dir / "cli" / "v1") & set(excluded)

    root = str(mixed_project.root)
    first = ",".join(str(i) for i in excluded[:5])
    assert main(["--project", root, "dataset", "exclude", first, "--include"]) == 0
    assert "included 5 frame(s); 20 frame(s)" in capsys.readouterr().out
    assert dataset_exclusions.excluded_frame_ids(mixed_project.conn) == set(excluded[5:])
    assert main(["--project", root, "dataset", "exclude", f"{excluded[0]},999999"]) == 2
    assert "no frame with id 999999" in capsys.readouterr().err
    assert dataset_exclusions.excluded_frame_ids(mixed_project.conn) == set(excluded[5:])


def test_a_frame_selection_limits_the_build_minus_excluded(mixed_project, capsys):
    frames = frames_repo.list_frames(mixed_project.conn)
    chosen = [f.id for f in frames[:40]]
    dataset_exclusions.set_excluded(mixed_project.conn, chosen[:4], True)
    _, path = build_dataset(mixed_project, DatasetSpec(
        name="sel", task="detect", frames=chosen, group_by="none", min_per_class=0))
    assert _frame_ids(path) == set(chosen[4:])
    text = ",".join(str(i) for i in chosen[10:20])
    assert main(["--project", str(mixed_project.root), "dataset", "build", "sel",
                 "--task", "detect", "--group-by", "none", "--min-per-class", "0",
                 "--frames", text, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert _frame_ids(mixed_project.datasets_dir / "sel" / "v2") == set(chosen[10:20])


def test_kinds_choose_boxes_or_polygons_for_detection(mixed_project, capsys):
    _, path = build_dataset(mixed_project, DatasetSpec(name="b", task="detect",
                                                       kinds=["box"]))
    report = json.loads((path / "report.json").read_text())
    assert "person" not in report["classes"] and "car" in report["classes"]
    assert report["skipped"]["polygon annotations (kind not chosen)"] == 60
    assert main(["--project", str(mixed_project.root), "dataset", "build", "p",
                 "--task", "detect", "--kinds", "polygon", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == ["person"]
    assert main(["--project", str(mixed_project.root), "dataset", "build", "t",
                 "--task", "segment", "--kinds", "box"]) == 2
    assert "a segment dataset cannot use box annotations" in capsys.readouterr().err


def test_segment_boxes_skipped_or_rejected(project):
    add_source(project, "s", [[poly("leaf", 5, 5), box("leaf", 40, 20)]] * 4
               + [[poly("leaf", 20, 10)]] * 6)
    _, path = build_dataset(project, DatasetSpec(name="s", task="segment", group_by="none",
                                                 min_per_class=0))
    assert json.loads((path / "report.json").read_text())["skipped"][
        "boxes in a segment dataset"] == 4
    with pytest.raises(DatasetError, match="has a box: a segment dataset needs polygons"):
        build_dataset(project, DatasetSpec(name="s", task="segment", segment_boxes="reject"))
    assert not (project.datasets_dir / "s" / "v2").exists()


def test_spec_round_trips_through_its_recorded_config(mixed_project):
    spec = DatasetSpec(name="r", task="detect", frames=[3, 1, 2], kinds=["box"], seed=5)
    record, _ = build_dataset(mixed_project, DatasetSpec(name="r", task="detect"))
    again = DatasetSpec.from_config(spec.to_config())
    assert again == spec and again.frames == [1, 2, 3]
    assert DatasetSpec.from_config(record.config).to_config() == record.config


@pytest.mark.parametrize("text, ids", [("3", [3]), ("3,1,2-4", [1, 2, 3, 4]), (" 7 , 7", [7])])
def test_parse_frame_ids(text, ids):
    assert parse_frame_ids(text) == ids


@pytest.mark.parametrize("text", ["", "a", "5-2", "1-", "-3", "1.5"])
def test_parse_frame_ids_refuses_bad_text(text):
    with pytest.raises(DatasetError):
        parse_frame_ids(text)
