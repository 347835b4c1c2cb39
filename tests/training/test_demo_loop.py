"""The demo's training half: repeat-factor sampling on, per-class figures returned."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_demo_detector_repeats_the_images_holding_the_rare_triangle(tmp_path):
    from src.data.demo import build_demo_project
    from src.training.demo_loop import DATASET, REPEAT_FACTOR_THRESHOLD, train_demo_detector

    with build_demo_project(tmp_path / "project") as project:
        run, metrics = train_demo_detector(project, epochs=1, imgsz=64,
                                           overrides=["log_images_every=0", "tensorboard=false"])
        assert run.status == "completed", run.error
        assert run.config["imbalance"]["repeat_factor_threshold"] == REPEAT_FACTOR_THRESHOLD
        labels = sorted((project.datasets_dir / DATASET).glob("v*/labels/train/*.txt"))
    with_triangle = sum(any(line.startswith("2 ") for line in p.read_text().splitlines())
                        for p in labels)
    assert 0 < with_triangle < len(labels) / 4            # the triangle is rare
    # only the images holding a triangle are repeated (squares and circles are everywhere)
    note = re.search(r"(\d+) of (\d+) training images repeated", run.base_model or "")
    assert note, run.base_model
    assert (int(note[1]), int(note[2])) == (with_triangle, len(labels))
    assert {"triangle/recall", "triangle/mAP50", "metrics/mAP50(B)"} <= set(metrics)
