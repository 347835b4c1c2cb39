"""A project reopens where the user left it: the same source, frame, zoom and class. The
state is kept per project in the GUI settings (src/gui/settings.py), saved when it closes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from src.db.records import MediaSource
from src.gui import settings

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow


def save(window: "MainWindow") -> None:
    """Remember the source, frame, zoom and class of the open project."""
    session, player, view = window.session, window.player, window.annotator.view
    if session is None:
        return
    center = view.mapToScene(view.viewport().rect().center())
    state = {"source_id": player.source.id if player.source else None,
             "frame": max(player.target, 0),
             "zoom": None if view.auto_fit else view.scale_factor(),
             "center": [center.x(), center.y()],
             "class_id": session.current_class_id}
    settings.save_project_state(session.project.root, state)


def reopen(window: "MainWindow", sources: list[MediaSource]) -> None:
    """Open the source and frame the user left, or the first source at frame 0."""
    session = window.session
    state = settings.project_state(session.project.root)
    if state.get("class_id") is not None:
        session.set_current_class(state["class_id"])
    source = next((s for s in sources if s.id == state.get("source_id")),
                  sources[0] if sources else None)
    window.player_bar.set_sources(sources, source.id if source else None)
    if source is None:                  # nothing imported yet: no position from before
        window.player_bar.set_range(0)
        window.player_bar.set_position(0, 0, None)
        return
    frame = state.get("frame", 0) if source.id == state.get("source_id") else 0
    zoom, center = state.get("zoom"), state.get("center")
    if zoom and center and source.id == state.get("source_id"):
        _zoom_when_shown(window, float(zoom), center)
    window.player.open_source(source, int(frame or 0))


def _zoom_when_shown(window: "MainWindow", zoom: float, center: list[float]) -> None:
    """Apply the saved zoom once the first frame is on screen (the view fits a new image)."""
    view = window.annotator.view

    def apply(_index: int, _image) -> None:
        window.player.frame_shown.disconnect(apply)
        view.zoom_by(zoom / view.scale_factor())
        view.centerOn(*center)

    window.player.frame_shown.connect(apply)
