"""Retrain with new data: the trained-on dataset's settings, the frames labelled since."""
from __future__ import annotations

import time

import pytest

from dataset_synth import add_source, box, read_manifest
from src.data.datasets import DatasetSpec, build_dataset
from src.data.datasets.retrain import active_models, retrain_plan
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import model_versions
from src.db.records import Annotation, ModelVersion
from src.errors import DatasetError


def _model(project, dataset_id, task="detect", active=True):
    return model_versions.add_model_version(project.conn, ModelVersion(
        task=task, name="m", version=1, path="models/m.pt", model_type="yolo",
        dataset_id=dataset_id, is_active=active))


def test_the_plan_rebuilds_the_settings_and_grows_a_selection(project):
    frames = add_source(project, "a", [[box("car", 5, 5)] for _ in range(12)]
                        + [[] for _ in range(4)])
    chosen = [f.id for f in frames[:10]]
    record, _ = build_dataset(project, DatasetSpec(
        name="cars", task="detect", frames=chosen, group_by="none", seed=9, min_per_class=0))
    model = _model(project, record.id)
    assert [m.id for m in active_models(project)] == [model.id]
    time.sleep(0.01)             # the store's timestamps have millisecond resolution
    car = classes_repo.list_classes(project.conn)[0]
    annotations_repo.add_annotations(project.conn, [Annotation(frames[13].id, car.id, "box",
                                                               [2, 2, 20, 20])])
    plan = retrain_plan(project, model)
    assert plan.labelled_since == 1 and plan.base_weights == f"model:{model.id}"
    assert plan.spec.frames == sorted(chosen + [frames[13].id])
    assert (plan.spec.seed, plan.spec.group_by, plan.spec.name) == (9, "none", "cars")
    new, path = build_dataset(project, plan.spec)
    assert new.version == 2
    assert frames[13].id in {e["frame_id"] for e in read_manifest(path)["entries"]}


def test_a_model_without_a_known_dataset_is_refused(project):
    add_source(project, "a", [[box("car", 5, 5)] for _ in range(4)])
    model = _model(project, None)
    with pytest.raises(DatasetError, match="was trained on is not in this project"):
        retrain_plan(project, model)
    assert active_models(project) == [model]
