"""Going to a frame and selecting shapes there: after an undo/redo (so the user sees what
changed), from a check-annotations finding, from the gallery. Also names the Edit › Undo and
Redo actions after the command they would replay ("Undo Move box 'car'")."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject

from src.db import sources as source_repo
from src.gui.session import ProjectSession

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow


class Navigator(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.session: ProjectSession | None = None

    def set_session(self, session: ProjectSession | None) -> None:
        self.session = session
        if session is not None:
            session.replayed.connect(self.show_shapes)
            stack = session.undo_stack
            stack.undoTextChanged.connect(self._on_stack_undo_text_changed)
            stack.redoTextChanged.connect(self._on_stack_redo_text_changed)
        self._on_stack_undo_text_changed(session.undo_stack.undoText() if session else "")
        self._on_stack_redo_text_changed(session.undo_stack.redoText() if session else "")

    def _on_stack_undo_text_changed(self, text: str) -> None:
        action = self.window.actions["undo"]
        action.setText(f"&Undo {text}" if text else "&Undo")
        action.setToolTip(f"Undo {text} (Ctrl+Z)" if text else "Nothing to undo")

    def _on_stack_redo_text_changed(self, text: str) -> None:
        action = self.window.actions["redo"]
        action.setText(f"&Redo {text}" if text else "&Redo")
        action.setToolTip(f"Redo {text} (Ctrl+Shift+Z)" if text else "Nothing to redo")

    def show_shapes(self, source_id: int, index: int, ann_ids: list[int]) -> None:
        """Show frame `index` of the source (paused) with `ann_ids` selected."""
        w = self.window
        if self.session is None:
            return
        w.player.pause()
        w.annotator.select_when_shown(source_id, index, ann_ids)
        if w.player.source is None or w.player.source.id != source_id:
            source = source_repo.get_source(self.session.conn, source_id)
            if source is None:
                return
            w.player_bar.set_sources(source_repo.list_sources(self.session.conn), source.id)
            w.player.open_source(source, index)
        elif w.player.target != index:
            w.player.seek(index)
