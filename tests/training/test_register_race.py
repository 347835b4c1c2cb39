"""Two runs registering a model of the same name at once: distinct versions, each folder
named after its own row's version, one active model."""
from __future__ import annotations

import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from src.db import model_versions, runs
from src.db.project import Project
from src.db.records import TrainingRun
from src.training.outcome import TrainOutcome
from src.training.runner import register_model
from tests.data.test_races import race_each

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs fork to start racers fast")


def _register(root: Path, models: Path, run_id: int) -> int:
    with Project.open(root, create=False) as project:
        project.models_dir = models
        run = runs.get_run(project.conn, run_id)
        weights = project.abspath(run.run_dir) / "best.pt"
        outcome = TrainOutcome("completed", merged_model=weights, metrics={"map": 0.5})
        cfg = SimpleNamespace(task="detect", name="det", weights=None, model_type="yolo")
        return register_model(project, project.conn, run, cfg, outcome).version


def test_runs_registering_one_name_at_once_get_distinct_versions(tmp_path):
    root, models = tmp_path / "p", tmp_path / "models"
    with Project.open(root) as project:
        ids = []
        for i in range(6):
            run_dir = root / "runs" / str(i)
            run_dir.mkdir(parents=True)
            (run_dir / "best.pt").write_bytes(b"weights %d" % i)
            ids.append(runs.add_run(project.conn, TrainingRun(
                "det", "detect", "yolo", run_dir=f"runs/{i}")).id)
    for pair in (ids[0:2], ids[2:4], ids[4:6]):
        got = race_each(_register, [(root, models, run_id) for run_id in pair])
        assert len(set(got)) == 2
    with Project.open(root, create=False) as project:
        versions = model_versions.list_model_versions(project.conn, "detect")
    assert [v.version for v in versions] == [1, 2, 3, 4, 5, 6]
    assert sum(v.is_active for v in versions) == 1
    for v in versions:  # each folder is named after its own row's version, weights inside
        assert Path(v.path).parent.name == f"v{v.version}" and Path(v.path).is_file()
    assert sorted(p.name for p in (models / "detect" / "det").iterdir()) == \
        [f"v{i}" for i in range(1, 7)]
