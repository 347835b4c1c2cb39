"""Retrain the active model with new data: the settings of the dataset it was trained on,
built again as a new version of that dataset (frames labelled since included), and the
training settings of the run that made the model (the train dialog starts from them)."""
from __future__ import annotations

from dataclasses import dataclass, field

from src.data.datasets.spec import DatasetSpec
from src.db import annotations as annotations_repo
from src.db import datasets as datasets_repo
from src.db import model_versions
from src.db import runs as runs_repo
from src.db.project import Project
from src.db.records import MODEL_TASKS, DatasetRecord, ModelVersion
from src.errors import DatasetError


@dataclass
class RetrainPlan:
    model: ModelVersion
    dataset: DatasetRecord            # the version the model was trained on
    spec: DatasetSpec                 # builds the next version of it
    labelled_since: int               # frames with annotations added or changed since
    settings: dict = field(default_factory=dict)   # the model's run config ({}: unknown)
    run_id: int | None = None

    @property
    def base_weights(self) -> str:
        return f"model:{self.model.id}"


def active_models(project: Project) -> list[ModelVersion]:
    """The active model of each task that has one, in MODEL_TASKS order."""
    found = (model_versions.active_model(project.conn, task) for task in MODEL_TASKS)
    return [m for m in found if m is not None]


def retrain_plan(project: Project, model: ModelVersion) -> RetrainPlan:
    """What 'retrain with new data' builds for `model`; DatasetError when its dataset is
    unknown here (an imported model, or the dataset was deleted)."""
    record = _trained_on(project, model)
    spec = DatasetSpec.from_config(record.config)
    since = annotations_repo.frames_labelled_since(project.conn, record.created_at)
    if spec.frames is not None:       # a chosen selection grows by the frames labelled since
        spec.frames = sorted(set(spec.frames) | since)
    run = runs_repo.get_run(project.conn, model.run_id) if model.run_id is not None else None
    return RetrainPlan(model, record, spec, len(since), dict(run.config) if run else {},
                       run.id if run else None)


def _trained_on(project: Project, model: ModelVersion) -> DatasetRecord:
    record = None
    if model.dataset_id is not None:
        record = datasets_repo.get_dataset_by_id(project.conn, model.dataset_id)
    if record is None and model.dataset.get("name") and model.dataset.get("version"):
        record = datasets_repo.get_dataset(project.conn, model.dataset["name"],
                                           int(model.dataset["version"]))
    if record is None or not record.config.get("name"):
        what = model.display_name or f"model {model.id}"
        raise DatasetError(f"the dataset {what} was trained on is not in this project",
                           field="dataset", hint="build a dataset (Training › Build dataset…)"
                                                 " and train on it instead")
    return record
