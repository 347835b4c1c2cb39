"""From what a user names ('active', a version id or name) to a predictor whose files were
verified before loading: the model manager checks each file's sha256 against the store and
refuses pickles nobody trusted; the trust gate stays open while ultralytics unpickles."""
from __future__ import annotations

from src.db.project import Project
from src.db.records import ModelVersion
from src.errors import ModelError
from src.training.inference.predictor import Predictor, create_predictor
from src.training.models import ModelManager

# Which task 'active' means when the caller does not say: detectors first (they make
# proposals), then segmenters, then classifiers.
ACTIVE_ORDER = ("detect", "segment", "classify")
CROP_TASKS = ("crop_classifier",)


def find_version(project: Project, ref: str | int | None = "active",
                 tasks: tuple[str, ...] = ACTIVE_ORDER) -> ModelVersion:
    """The version `ref` names (see ModelManager.get); plain 'active' is the active model of
    the first task in `tasks` that has one."""
    manager = ModelManager(project)
    ref = "active" if ref in (None, "") else str(ref).strip()
    if ref != "active":
        return manager.get(ref)
    for task in tasks:
        found = manager.active(task)
        if found is not None:
            return found
    raise ModelError(f"no active {' / '.join(tasks)} model in this project", field="--model",
                     hint="train one, or activate one with `python main.py models activate ID`")


def version_label(mv: ModelVersion) -> str:
    return mv.display_name or f"{mv.task}/{mv.name} v{mv.version}"


def predictor_for(project: Project, mv: ModelVersion, **options) -> Predictor:
    """The predictor of a version, its files verified first (ModelIntegrityError,
    UntrustedModelError) and nothing unpickled outside the trust gate."""
    return create_predictor(mv, project=project, model_name=version_label(mv), **options)


def load_predictor(project: Project, ref: str | int | None = "active", *,
                   tasks: tuple[str, ...] = ACTIVE_ORDER, **options
                   ) -> tuple[ModelVersion, Predictor]:
    """(the version, its predictor) for `ref`; options go to create_predictor."""
    mv = find_version(project, ref, tasks)
    return mv, predictor_for(project, mv, **options)
