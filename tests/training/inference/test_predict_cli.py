"""`predict` as a user runs it (in-process CLI): stored proposals, annotated video, JSON,
two-stage, and one-line errors with exit 2."""
from __future__ import annotations

import json

import cv2
import pytest

from src.cli import main as cli_main
from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db import proposals as proposals_repo
from src.training.models import ModelManager
from tests.training.inference.conftest import VIDEO_SIZE, square_frame

pytestmark = pytest.mark.slow


def test_predict_stores_proposals_and_writes_an_annotated_video(project, detector,
                                                                 squares_video, tmp_path, capsys):
    root = ["--project", str(project.root)]
    out_video = tmp_path / "annotated.avi"
    assert cli_main([*root, "predict", str(squares_video), "--frames", "3:9", "--conf", "0.001",
                     "--store", "--save-video", str(out_video), "--json", "--device",
                     "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["id"] == detector.id and out["model"]["task"] == "detect"
    assert [p["frame_index"] for p in out["predictions"]] == list(range(3, 9))
    boxes = sum(len(p["detections"]) for p in out["predictions"])
    assert out["stored"]["proposals"] == boxes > 0 and out["stored"]["captured"] == 6
    (source_frames) = frames_repo.list_frames(project.conn)
    assert [f.frame_index for f in source_frames] == list(range(3, 9))
    assert len(annotations_repo.list_annotations(project.conn, status="proposed")) == boxes
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) \
        == VIDEO_SIZE
    cap.release()
    assert not list(tmp_path.glob(".annotated-*"))       # no temp folder left behind


def test_two_stage_on_an_image_keeps_both_labels(project, detector, crop_classifier, tmp_path,
                                                 capsys):
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), square_frame(2))
    assert cli_main(["--project", str(project.root), "predict", str(image), "--two-stage",
                     "--conf", "0.001", "--json", "--device", "cpu"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)["predictions"]
    assert pred["detections"]
    for det in pred["detections"]:
        assert det["class_name"] in ("red", "blue") and det["detector"]["class_name"] in (
            "red", "blue")
        assert 0 <= det["confidence"] <= 1 and 0 <= det["detector"]["confidence"] <= 1


def test_stored_two_stage_keeps_the_detector_s_class(project, detector, crop_classifier,
                                                     squares_video, capsys):
    root = ["--project", str(project.root)]
    assert cli_main([*root, "import", str(squares_video)]) == 0
    assert cli_main([*root, "predict", "squares.avi", "--frames", "0:2", "--two-stage",
                     "--conf", "0.001", "--store", "--device", "cpu"]) == 0
    assert "stored" in capsys.readouterr().out
    ids = proposals_repo.find_proposals(project.conn)
    details = proposals_repo.get_details(project.conn, ids)
    assert ids and set(details) == set(ids)
    assert all(d.detector_class in ("red", "blue") and d.detector_confidence is not None
               for d in details.values())

    # a classifier on whole frames proposes one frame tag each
    assert cli_main([*root, "predict", "squares.avi", "--frames", "5:7", "--model",
                     str(crop_classifier.id), "--store", "--device", "cpu"]) == 0
    tags = [a for a in annotations_repo.list_annotations(project.conn, status="proposed")
            if a.source == f"model:{crop_classifier.id}"]
    assert len(tags) == 2 and {a.kind for a in tags} == {"tag"}


def test_bad_input_is_one_line_and_exit_2(project, detector, squares_video, tmp_path, capsys):
    root = ["--project", str(project.root)]
    cases = [
        (["predict", str(squares_video), "--conf", "2"], "conf must be between 0 and 1"),
        (["predict", str(squares_video), "--model", "nope"], "no model version 'nope'"),
        (["predict", str(tmp_path / "missing.mp4")], "neither a file/folder nor a source"),
        (["predict", str(squares_video), "--frames", "20:99"], "outside"),
        (["predict", str(squares_video), "--two-stage"], "no active crop_classifier"),
        (["proposals", "accept", "nope"], "no source 'nope'"),
        (["propagate", str(squares_video), "--from-frame", "5", "--to-frame", "2"],
         "before --from-frame"),
    ]
    for argv, message in cases:
        assert cli_main([*root, *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, (argv, err)
    assert cli_main(["--project", str(tmp_path / "none"), "predict", str(squares_video)]) == 2
    assert "project folder does not exist" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    weights = ModelManager(project).weights_path(detector)
    weights.write_bytes(weights.read_bytes()[:-1])
    assert cli_main([*root, "predict", str(squares_video), "--frames", "0:1"]) == 2
    assert "changed since it was registered" in capsys.readouterr().err


def test_predict_on_an_image_folder_writes_annotated_images(project, detector, tmp_path,
                                                            capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in (2, 10, 1):
        cv2.imwrite(str(folder / f"f{i}.png"), square_frame(i))
    out = tmp_path / "drawn"
    assert cli_main(["--project", str(project.root), "predict", str(folder), "--conf", "0.001",
                     "--frames", "1:", "--save-video", str(out), "--device", "cpu"]) == 0
    assert "2 frame(s) of images" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "000002.png"]
    assert cv2.imread(str(out / "000001.png")).shape == (64, 96, 3)
    assert frames_repo.list_frames(project.conn) == []      # nothing stored without --store
