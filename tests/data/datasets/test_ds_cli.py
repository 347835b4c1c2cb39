"""`dataset build|list|show` and `export` on the command line."""
from __future__ import annotations

import json

from src.cli import main


def test_build_list_show_and_export(mixed_project, tmp_path, capsys):
    root = str(mixed_project.root)
    assert main(["--project", root, "dataset", "build", "cars", "--task", "detect",
                 "--split", "0.6,0.2,0.2", "--seed", "3", "--map", "bike=vehicle,car=vehicle",
                 "--augment", "standard:vehicle=2"]) == 0
    out = capsys.readouterr().out
    assert "cars:v1 (detect), split [0.6, 0.2, 0.2] seed 3 by block" in out
    assert "vehicle" in out and "augmented copies in train:" in out
    assert f"built cars:v1 -> {mixed_project.datasets_dir / 'cars' / 'v1'}" in out
    assert main(["--project", root, "dataset", "build", "cars", "--task", "crops",
                 "--classes", "bike", "--group-by", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 2 and report["classes"] == ["bike"]
    assert main(["--project", root, "dataset", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["cars:v1", "detect"],
                                                          ["cars:v2", "crops"]]
    assert main(["--project", root, "dataset", "show", "cars:v1"]) == 0
    assert "# Dataset cars v1 (detect)" in capsys.readouterr().out
    assert main(["--project", root, "export", str(tmp_path / "out"), "--format", "coco",
                 "--dataset", "cars:v1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == 2 and (tmp_path / "out" / "annotations").is_dir()


def test_user_errors_exit_2_with_one_line(mixed_project, capsys):
    root = str(mixed_project.root)
    for args, message in (
            (["--split", "0.7,0.2,0.2"], "split ratios sum to 1.1, not 1"),
            (["--classes", "boat"], "unknown class 'boat'"),
            (["--map", "car"], "'car' is not a class mapping"),
            (["--augment", "wild:car=2"], "no augmentation pipeline 'wild'")):
        assert main(["--project", root, "dataset", "build", "x", "--task", "detect",
                     *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["--project", root, "dataset", "build", "a/b", "--task", "detect"]) == 2
    assert "cannot be a dataset name" in capsys.readouterr().err
    assert main(["--project", root, "dataset", "show", "nope"]) == 2
    assert "no dataset 'nope'" in capsys.readouterr().err
    assert not (mixed_project.datasets_dir / "x").exists() or \
        not any((mixed_project.datasets_dir / "x").iterdir())


def test_build_from_several_projects(tmp_path, capsys):
    from dataset_synth import add_source, box
    from src.db.project import Project
    for name in ("a", "b", "c"):
        with Project.open(tmp_path / name) as p:
            add_source(p, name, [[box("car", 5, 5)] for _ in range(10)])
    target = str(tmp_path / "target")
    assert main(["--project", target, "dataset", "build", "all", "--task", "detect",
                 "--group-by", "none", "--from", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--from", str(tmp_path / "c"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["images"].values()) == 30 and len(report["projects"]) == 3
    assert (tmp_path / "target" / "datasets" / "all" / "v1" / "data.yaml").is_file()
