"""Opens the project-wide dialogs (import annotations, export, check annotations) and applies
what they report to the window: new sources and classes after an import, a finding's frame
with its shape selected."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject

from src.data.checks import Finding
from src.db import sources as source_repo
from src.gui.check_dialog import CheckDialog
from src.gui.exchange import ExportDialog, ImportAnnotationsDialog

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow


class ProjectTools(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.check_dialog: CheckDialog | None = None
        self.import_dialog: ImportAnnotationsDialog | None = None
        self.export_dialog: ExportDialog | None = None

    def close_dialogs(self) -> None:
        """The project is closing: wait for running jobs, then drop the dialogs."""
        self.wait()
        for dialog in (self.check_dialog, self.import_dialog, self.export_dialog):
            if dialog is not None:
                dialog.close()
                dialog.deleteLater()
        self.check_dialog = self.import_dialog = self.export_dialog = None

    def wait(self) -> None:
        for dialog in (self.import_dialog, self.export_dialog):
            if dialog is not None:
                dialog.wait()

    def check_annotations(self) -> CheckDialog | None:
        session = self.window.session
        if session is None:
            return None
        if self.check_dialog is None:
            self.check_dialog = CheckDialog(session, self.window)
            self.check_dialog.finding_activated.connect(self._on_check_finding_activated)
        else:
            self.check_dialog.run_check()
        self.check_dialog.show()
        self.check_dialog.raise_()
        return self.check_dialog

    def import_annotations(self) -> ImportAnnotationsDialog | None:
        if self.window.session is None:
            return None
        if self.import_dialog is None:
            self.import_dialog = ImportAnnotationsDialog(self.window.session, self.window)
            self.import_dialog.job_done.connect(self._on_import_done)
        self.import_dialog.show()
        self.import_dialog.raise_()
        return self.import_dialog

    def export(self) -> ExportDialog | None:
        if self.window.session is None:
            return None
        if self.export_dialog is None:
            self.export_dialog = ExportDialog(self.window.session, self.window)
        self.export_dialog.show()
        self.export_dialog.raise_()
        return self.export_dialog

    def _on_check_finding_activated(self, finding: Finding) -> None:
        frame = finding.frame
        self.window.navigator.show_shapes(frame.source_id, frame.frame_index,
                                          [finding.annotation.id])

    def _on_import_done(self, _summary: dict) -> None:
        w, session = self.window, self.window.session
        if session is None:
            return
        session.classes_changed.emit()
        session.frames_changed.emit()
        session.annotations_changed.emit()
        sources = source_repo.list_sources(session.conn)
        current = w.player.source.id if w.player.source else (sources[-1].id if sources else None)
        w.player_bar.set_sources(sources, current)
        if w.player.source is None and sources:
            w.player.open_source(sources[-1])
