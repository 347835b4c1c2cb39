"""Test isolation: offscreen Qt, offline ultralytics, projects and settings in tmp_path."""
from __future__ import annotations

import os
import tempfile

# Set before Qt or ultralytics is imported anywhere (both read these at import time).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="labelloop-yolo-cfg-"))
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from src.db.project import Project  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test touches the user's workspace/, models/, settings or training lock."""
    monkeypatch.setenv("LABELLOOP_PROJECT", str(tmp_path / "workspace"))
    monkeypatch.setenv("LABELLOOP_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("LABELLOOP_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LABELLOOP_LOCK_DIR", str(tmp_path / "lock"))  # no machine-wide lock
    yield


@pytest.fixture
def project(tmp_path):
    """An empty project in tmp_path."""
    proj = Project.open(tmp_path / "project")
    yield proj
    proj.close()
