"""`segment` and `track` as a user runs them (in-process CLI), on SAM 2 tiny built without
weights (`--untrained`, 128 px): JSON output, stored proposals, exit 2 with one line when the
weights are missing or the input is bad."""
from __future__ import annotations

import json

import pytest

from src.cli import main as cli_main
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db.classes import add_class
from src.db.records import Annotation
from src.data.capture import capture_array
from tests.training.sam.conftest import square_frame

FAST = ["--untrained", "--imgsz", "128"]


def test_segment_without_weights_says_which_file_to_put_where(project, square_source, capsys):
    code = cli_main(["--project", str(project.root), "segment", square_source.name,
                     "--frame", "0", "--point", "20,28"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "sam2_t.pt" in err and str(project.base_weights_dir) in err


def test_segment_prints_candidates_and_stores_the_best(project, square_source, capsys):
    root = ["--project", str(project.root)]
    assert cli_main([*root, "segment", square_source.name, "--frame", "3", "--point", "25,28",
                     "--point", "90,60,-", "--box", "15,14,42,42", "--store", "--class",
                     "square", "--json", *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["untrained"] and len(out["candidates"]) == 3
    ious = [c["iou"] for c in out["candidates"]]
    assert ious == sorted(ious, reverse=True)
    ann = annotations_repo.get_annotation(project.conn, out["stored"])
    frame = frames_repo.get_frame_at(project.conn, square_source.id, 3)
    assert ann.frame_id == frame.id and ann.status == "proposed" and ann.kind == "polygon"
    assert ann.geometry == out["candidates"][0]["polygon"]
    assert ann.confidence == pytest.approx(ious[0])


@pytest.mark.parametrize("args, field", [
    (["--frame", "0", "--point", "500,5"], "--point"),
    (["--frame", "99", "--point", "5,5"], "--frame"),
    (["--frame", "0", "--point", "5,5", "--store"], "--class"),
])
def test_segment_bad_input_exits_2_with_one_line(project, square_source, capsys, args, field):
    code = cli_main(["--project", str(project.root), "segment", square_source.name, *args,
                     *FAST])
    err = capsys.readouterr().err
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_track_from_an_annotation_stores_proposals(project, square_source, capsys):
    cls = add_class(project.conn, "square")
    frame = capture_array(project, square_source, 2, square_frame(2))
    ann = annotations_repo.add_annotation(project.conn, Annotation(
        frame.id, cls.id, "box", [14, 16, 38, 40]))
    root = ["--project", str(project.root)]
    assert cli_main([*root, "track", square_source.name, "--from-frame", "2", "--to-frame", "5",
                     "--object", str(ann.id), "--json", *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["frame"] for f in out["frames"]] == [3, 4, 5]
    assert out["stored"]["frames"] == 3 and out["stored"]["captured"] == 3
    assert out["adapter"] is None and not out["stopped"]
    # an untrained SAM 2 says 'absent' everywhere: no polygon is stored for such frames
    assert out["stored"]["proposals"] == sum(f["present"] for f in out["frames"])
    code = cli_main([*root, "track", square_source.name, "--from-frame", "2", "--to-frame", "3",
                     "--object", str(ann.id), "--lit-lora", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "no LIT-LoRA adapter" in err
    code = cli_main([*root, "track", square_source.name, "--from-frame", "3", "--to-frame", "4",
                     "--object", str(ann.id), *FAST])
    assert code == 2 and "--object" in capsys.readouterr().err
