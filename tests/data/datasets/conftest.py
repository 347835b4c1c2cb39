"""Fixtures of the dataset tests (helpers live in dataset_synth.py)."""
from __future__ import annotations

import pytest

from dataset_synth import add_source, mixed_frames
from src.db.project import Project


@pytest.fixture
def mixed_project(project: Project) -> Project:
    """Two sources of 60 frames each with cars, persons and a rare bike class."""
    add_source(project, "a", mixed_frames(60))
    add_source(project, "b", mixed_frames(60, offset=11))
    return project
