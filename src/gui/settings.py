"""Where the GUI keeps its settings: an ini file under $LABELLOOP_SETTINGS_DIR when set."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from PyQt6.QtCore import QSettings

MAX_RECENT = 10
_RECENT_KEY = "recent_projects"


def app_settings() -> QSettings:
    """Tests (and portable installs) set LABELLOOP_SETTINGS_DIR; otherwise the user's Qt settings."""
    folder = os.environ.get("LABELLOOP_SETTINGS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "labelloop.ini"), QSettings.Format.IniFormat)
    return QSettings("LabelLoop", "LabelLoop")


def recent_projects() -> list[str]:
    """Most recent first; folders that no longer exist are left out."""
    value = app_settings().value(_RECENT_KEY, [])
    if isinstance(value, str):  # an ini file returns a one-element list as a plain string
        value = [value]
    return [p for p in (value or []) if Path(p).is_dir()]


def add_recent_project(path: str | Path) -> list[str]:
    path = str(Path(path).resolve())
    items = [path] + [p for p in recent_projects() if p != path]
    settings = app_settings()
    settings.setValue(_RECENT_KEY, items[:MAX_RECENT])
    settings.sync()
    return items[:MAX_RECENT]


def _state_key(root: str | Path) -> str:
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return f"project_state/{digest}"


def project_state(root: str | Path) -> dict:
    """Where the user left a project: source, frame, zoom, class ({} if never saved)."""
    value = app_settings().value(_state_key(root), "")
    try:
        state = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_project_state(root: str | Path, state: dict) -> None:
    settings = app_settings()
    settings.setValue(_state_key(root), json.dumps(state))
    settings.sync()
