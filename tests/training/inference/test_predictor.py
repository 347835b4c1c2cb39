"""The predictor contract on real (tiny) models: same boxes as plain ultralytics, original
pixels, the trainer's preprocessing for timm, verified loading, two-stage, batches."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from src.data.datasets.builder import _crop as builder_crop
from src.data.geometry import Box
from src.errors import MediaError, ModelError, ModelIntegrityError, UntrustedModelError
from src.training.inference.loading import load_predictor
from src.training.inference.media import open_input, parse_frames
from src.training.inference.predictor import create_predictor
from src.training.inference.run import predict_media
from src.training.inference.two_stage import TwoStagePredictor, crop
from src.training.models import ModelManager
from tests.training.inference.conftest import square_frame

pytestmark = pytest.mark.slow
LOW = 0.001      # a 1-epoch detector's confidences are tiny: see every box it has


def test_yolo_predictions_are_ultralytics_own_in_original_pixels(project, detector):
    from ultralytics import YOLO
    predictor = create_predictor(detector, project=project, conf=LOW, device="cpu")
    assert (predictor.task, predictor.names) == ("detect", ["red", "blue"])
    images = [square_frame(0), cv2.resize(square_frame(5), (150, 100))]
    ours = predictor.predict(images)
    plain = YOLO(str(ModelManager(project).weights_path(detector))).predict(
        images, conf=LOW, iou=0.7, verbose=False)
    assert [(p.width, p.height) for p in ours] == [(96, 64), (150, 100)]
    for pred, ref in zip(ours, plain):
        assert len(pred.detections) == len(ref.boxes) > 0
        assert np.allclose([d.box for d in pred.detections], ref.boxes.xyxy.numpy(), atol=1e-4)
        assert [d.class_id for d in pred.detections] == ref.boxes.cls.int().tolist()
        assert np.allclose([d.confidence for d in pred.detections], ref.boxes.conf.numpy())
        for d in pred.detections:
            assert 0 <= d.box[0] <= d.box[2] <= pred.width and 0 <= d.box[1] <= d.box[3] <= pred.height
            assert d.class_name == predictor.names[d.class_id] and d.kind == "box"


def test_timm_classifier_sees_what_the_trainer_saw(project, crop_classifier, tmp_path):
    import torch
    from src.training.image_folder import ImageClassDataset
    assert crop_classifier.task == "crop_classifier"
    predictor = create_predictor(crop_classifier, project=project, device="cpu")
    image = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), image)
    (pred,) = predictor.predict([image])
    tensor = ImageClassDataset([], 32, train=False).load(tmp_path / "x.png")
    with torch.inference_mode():
        expected = predictor.model(tensor[None]).softmax(1)[0].numpy()
    assert pred.task == "classify" and (pred.width, pred.height) == (30, 40)
    assert pred.top1.class_id == int(expected.argmax())
    assert pred.top1.class_name == predictor.names[pred.top1.class_id]
    assert np.allclose([c.confidence for c in pred.classes],
                       np.sort(expected)[::-1][:len(pred.classes)], atol=1e-5)


def test_tampered_or_untrusted_weights_are_refused_before_loading(project, detector, tmp_path):
    weights = ModelManager(project).weights_path(detector)
    stranger = tmp_path / "stranger.pt"
    stranger.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(UntrustedModelError):          # a pickle nobody trusted, in a project
        create_predictor(stranger, project=project)
    with open(weights, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelIntegrityError, match="changed since it was registered"):
        load_predictor(project, detector.id)


def test_references_and_thresholds_are_checked(project, detector):
    version, _ = load_predictor(project, "active", device="cpu")
    assert version.id == detector.id
    with pytest.raises(ModelError):
        load_predictor(project, "nope")
    with pytest.raises(ModelError, match="conf must be between 0 and 1"):
        load_predictor(project, detector.id, conf=1.5)
    with pytest.raises(ModelError, match="no active crop_classifier"):
        load_predictor(project, "active", tasks=("crop_classifier",))


def test_two_stage_relabels_each_box_and_keeps_the_detector_s_label(project, detector,
                                                                    crop_classifier):
    det = create_predictor(detector, project=project, conf=LOW, device="cpu")
    cls = create_predictor(crop_classifier, project=project, device="cpu")
    image = square_frame(3)
    plain = det.predict([image])[0]
    (pred,) = TwoStagePredictor(det, cls).predict([image])
    assert len(pred.detections) == len(plain.detections) > 0
    for two, one in zip(pred.detections, plain.detections):
        assert (two.detector.class_name, two.detector.confidence) == (one.class_name,
                                                                     one.confidence)
        (label,) = cls.predict([crop(image, one.box)])
        assert (two.class_name, two.confidence) == (label.top1.class_name,
                                                    label.top1.confidence)
        assert two.box == one.box


def test_crops_are_cut_as_the_dataset_builder_cuts_them():
    image = np.arange(60 * 80 * 3, dtype=np.uint8).reshape(60, 80, 3)
    for box in ([10.2, 5.7, 30.9, 40.1], [0, 0, 80, 60], [70.5, 50.5, 79.9, 59.9]):
        assert np.array_equal(crop(image, box), builder_crop(image, Box(*box), 0.1))


def test_batches_report_progress_and_stop_between_batches(project, detector, squares_video):
    predictor = create_predictor(detector, project=project, conf=0.5, device="cpu", batch=4)
    seen = []
    with open_input(squares_video) as media:
        indices = parse_frames("2:14", media.frame_count)
        preds = [p for p, _ in predict_media(predictor, media, indices,
                                             progress=lambda d, t: seen.append((d, t)))]
        assert [p.frame_index for p in preds] == list(range(2, 14))
        assert seen == [(4, 12), (8, 12), (12, 12)]
        stopped = [p for p, _ in predict_media(predictor, media, indices,
                                               should_stop=lambda: len(seen) >= 4,
                                               progress=lambda d, t: seen.append((d, t)))]
        assert [p.frame_index for p in stopped] == [2, 3, 4, 5]


def test_frame_ranges():
    assert parse_frames("3:6", 10) == [3, 4, 5] and parse_frames("7:", 10) == [7, 8, 9]
    assert parse_frames(":2", 10) == [0, 1] and parse_frames("0:10:4", 10) == [0, 4, 8]
    assert parse_frames("5", 10) == [5] and parse_frames(None, 3) == [0, 1, 2]
    for bad in ("5:3", "a:b", "0:11", "-1:3", "1:2:3:4", "10:", "0:5:0"):
        with pytest.raises(MediaError):
            parse_frames(bad, 10)
