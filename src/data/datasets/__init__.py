"""Dataset snapshots: build (selection, splits, writers, report) and resolve by reference."""
from __future__ import annotations

from pathlib import Path

from src.data.datasets.naming import parse_ref
from src.data.datasets.spec import AugmentSpec, DatasetSpec
from src.db import datasets as datasets_repo
from src.db.project import Project
from src.db.records import DatasetRecord
from src.errors import DatasetError

__all__ = ["AugmentSpec", "DatasetSpec", "build_dataset", "resolve_dataset"]


def __getattr__(name: str):
    """`build_dataset` is imported when first asked for: the builder pulls in albumentations
    and torch (3 s), and every CLI command imports this package through src.training.config
    (`info` took 4.4 s)."""
    if name == "build_dataset":
        from src.data.datasets.builder import build_dataset
        return build_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_dataset(project: Project, ref: str) -> tuple[DatasetRecord, Path]:
    """'NAME' (latest version) or 'NAME:vN' -> (record, absolute snapshot folder)."""
    name, version = parse_ref(ref)
    record = datasets_repo.get_dataset(project.conn, name, version)
    if record is None:
        known = sorted(f"{d.name}:v{d.version}"
                       for d in datasets_repo.list_datasets(project.conn))
        what = f"'{name}' version {version}" if version else f"'{name}'"
        raise DatasetError(f"no dataset {what} in this project", field="dataset",
                           hint=f"known datasets: {', '.join(known) or 'none (build one first)'}")
    path = project.abspath(record.path)
    if not path.is_dir():
        raise DatasetError("the dataset folder is missing", path=path, field="dataset",
                           hint="rebuild it with 'dataset build'")
    return record, path
