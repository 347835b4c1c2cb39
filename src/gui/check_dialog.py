"""Tools › Check annotations: lists every violation src/data/checks.py finds; clicking one
shows that frame with the shape selected; "Clip to image" stores the fixes as one undoable
edit. The dialog only shows findings; the checks themselves are Qt-free."""
from __future__ import annotations

from PyQt6.QtCore import pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from src.data.checks import Finding, check_project
from src.db import sources as source_repo
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession

COLUMNS = ("Source", "Frame", "Shape", "Problem", "Clip fixes it")


class CheckDialog(QDialog):
    finding_activated = pyqtSignal(object)        # Finding

    def __init__(self, session: ProjectSession, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("checkDialog")
        self.setWindowTitle("Check annotations")
        self.session = session
        self.findings: list[Finding] = []
        self.summary = QLabel(self)
        self.summary.setObjectName("checkSummary")
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("checkTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._on_table_cell_clicked)
        self.clip_button = self._button("Clip to image", "clipButton", self._on_clip_clicked)
        again = self._button("Check again", "recheckButton", self._on_recheck_clicked)
        close = self._button("Close", "closeCheckButton", self._on_close_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(again)
        buttons.addWidget(self.clip_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.resize(760, 420)
        session.annotations_changed.connect(self._on_session_annotations_changed)
        self.run_check()

    def _button(self, text: str, name: str, slot) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    @reports_errors
    def run_check(self) -> None:
        self.findings = check_project(self.session.project)
        self._fill()

    def _fill(self) -> None:
        names = {s.id: s.name for s in source_repo.list_sources(self.session.conn)}
        self.table.setRowCount(len(self.findings))
        for row, f in enumerate(self.findings):
            cls = self.session.class_by_id(f.annotation.class_id)
            shape = f"{f.annotation.kind} '{cls.name if cls else f.annotation.class_id}'"
            cells = (names.get(f.frame.source_id, str(f.frame.source_id)), str(f.frame.frame_index),
                     shape, f.message, "yes" if f.fixable else "no")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        fixable = sum(f.fixable for f in self.findings)
        frames = len({f.frame.id for f in self.findings})
        self.summary.setText("No problems found." if not self.findings else
                             f"{len(self.findings)} problem(s) on {frames} frame(s);"
                             f" {fixable} can be fixed by clipping to the image.")
        self.clip_button.setText(f"Clip to image ({fixable})")
        self.clip_button.setEnabled(fixable > 0)

    @pyqtSlot(int, int)
    def _on_table_cell_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.findings):
            self.finding_activated.emit(self.findings[row])

    @pyqtSlot()
    @reports_errors
    def _on_clip_clicked(self) -> None:
        fixes = list({f.fix.id: f.fix for f in self.findings if f.fixable}.values())
        if fixes:
            self.session.update_annotations(fixes, f"Clip {len(fixes)} shape(s) to the image")

    @pyqtSlot()
    def _on_recheck_clicked(self) -> None:
        self.run_check()

    @pyqtSlot()
    def _on_close_clicked(self) -> None:
        self.close()

    def _on_session_annotations_changed(self) -> None:
        if self.isVisible():
            self.run_check()
