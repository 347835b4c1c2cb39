"""One training at a time (the runner's MachineLock): a training asked for while another runs
waits in this session's queue and starts when the running one ends. Training › Training
queue… lists this session's queued, running and finished runs and the project's runs table;
it cancels a queued run, and the running one through its monitor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from src.db import runs as runs_repo
from src.gui.training.monitor import TrainingMonitor
from src.gui.training.worker import TrainingRequest

_REFRESH_MS = 1000


@dataclass(eq=False)
class QueuedTraining:
    request: TrainingRequest
    state: str = "queued"                    # queued | started | cancelled
    monitor: TrainingMonitor | None = None

    @property
    def status(self) -> str:
        if self.monitor is not None:
            return self.monitor.status
        return self.state

    def describe(self) -> str:
        r = self.request
        if r.resume_run_id is not None:
            return f"resume run {r.resume_run_id}"
        name = getattr(r.config, "stem", str(r.config))
        return f"{name} on {r.dataset}" + (f" ({' '.join(r.overrides)})" if r.overrides else "")


class TrainingQueue(QObject):
    """This session's trainings in order; `open_monitor(request)` starts one (non-blocking)."""
    changed = pyqtSignal()

    def __init__(self, open_monitor: Callable[[TrainingRequest], TrainingMonitor],
                 parent=None) -> None:
        super().__init__(parent)
        self._open_monitor = open_monitor
        self.entries: list[QueuedTraining] = []
        self.followed: list[TrainingMonitor] = []     # runs reattached, not started here

    def submit(self, request: TrainingRequest) -> QueuedTraining:
        """Start now when nothing trains, else queue it."""
        entry = QueuedTraining(request)
        self.entries.append(entry)
        if not self.busy:
            self._start(entry)
        self.changed.emit()
        return entry

    def add_followed(self, monitor: TrainingMonitor) -> None:
        monitor.run_ended.connect(lambda *_: self.start_next())
        self.followed.append(monitor)
        self.changed.emit()

    @property
    def busy(self) -> bool:
        monitors = [e.monitor for e in self.entries if e.monitor] + self.followed
        return any(m.status == "running" for m in monitors)

    @property
    def queued(self) -> list[QueuedTraining]:
        return [e for e in self.entries if e.state == "queued"]

    def clear(self) -> None:
        """The project closes: waiting trainings end with it; nothing is followed any more."""
        for entry in self.queued:
            entry.state = "cancelled"
        self.entries.clear()
        self.followed.clear()
        self.changed.emit()

    def cancel(self, entry: QueuedTraining) -> None:
        if entry.state == "queued":
            entry.state = "cancelled"
            self.changed.emit()

    def start_next(self) -> None:
        if not self.busy and self.queued:
            self._start(self.queued[0])
        self.changed.emit()

    def _start(self, entry: QueuedTraining) -> None:
        entry.state = "started"
        entry.monitor = self._open_monitor(entry.request)
        entry.monitor.run_ended.connect(lambda *_: self.start_next())


class QueueDialog(QDialog):
    """This session's trainings and the project's runs; Cancel a queued or running one."""

    def __init__(self, queue: TrainingQueue, conn_provider: Callable, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingQueueDialog")
        self.setWindowTitle("Training queue")
        self.queue, self._conn = queue, conn_provider
        self.session_table = self._table("sessionRunsTable", ("Training", "Status", "Run"))
        self.runs_table = self._table("projectRunsTable", ("Run", "Name", "Task", "Status",
                                                           "Queued", "Finished", "Error"))
        self.cancel_button = QPushButton("Cancel selected", objectName="cancelQueuedButton")
        self.cancel_button.clicked.connect(lambda _checked=False: self._on_cancel_clicked())
        self.show_button = QPushButton("Show monitor", objectName="showMonitorButton")
        self.show_button.clicked.connect(lambda _checked=False: self._on_show_clicked())
        close = QPushButton("Close", objectName="closeQueueButton")
        close.clicked.connect(lambda _checked=False: self.close())
        row = QHBoxLayout()
        for button in (self.cancel_button, self.show_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>This session</b> — one training at a time; the next "
                                "starts when the running one ends"))
        layout.addWidget(self.session_table, 1)
        layout.addWidget(QLabel("<b>All runs of this project</b> (also those started from "
                                "the command line)"))
        layout.addWidget(self.runs_table, 1)
        layout.addLayout(row)
        self.session_table.itemSelectionChanged.connect(self._update_buttons)
        self.runs_table.itemSelectionChanged.connect(self._update_buttons)
        queue.changed.connect(self.refresh)
        self._timer = QTimer(self, interval=_REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.resize(820, 520)
        self.refresh()

    @staticmethod
    def _table(name: str, headers: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(headers), objectName=name)
        table.setHorizontalHeaderLabels(headers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def refresh(self) -> None:
        rows = [(e.describe(), e.status, e.monitor.run_id if e.monitor else None)
                for e in self.queue.entries]
        rows += [(f"run {m.run_id} (reattached)", m.status, m.run_id) for m in self.queue.followed]
        self._fill(self.session_table, [(a, b, "" if c is None else str(c)) for a, b, c in rows])
        conn = self._conn()
        runs = runs_repo.list_runs(conn) if conn is not None else []
        self._fill(self.runs_table, [(str(r.id), r.name, r.task, r.status, _when(r.queued_at),
                                      _when(r.finished_at), r.error or "") for r in runs])
        self._update_buttons()

    @staticmethod
    def _fill(table: QTableWidget, rows: list[tuple]) -> None:
        selected = table.currentRow() if table.selectedItems() else -1
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(str(text)))
        if 0 <= selected < len(rows):
            table.selectRow(selected)

    def _session_item(self):
        rows = {i.row() for i in self.session_table.selectedIndexes()}
        items = self.queue.entries + self.queue.followed
        return items[rows.pop()] if len(rows) == 1 and max(rows) < len(items) else None

    def _project_run(self):
        rows = {i.row() for i in self.runs_table.selectedIndexes()}
        if len(rows) != 1 or self._conn() is None:
            return None
        item = self.runs_table.item(rows.pop(), 0)
        return runs_repo.get_run(self._conn(), int(item.text())) if item else None

    def _update_buttons(self) -> None:
        item = self._session_item()
        monitor = getattr(item, "monitor", item)
        run = self._project_run()
        cancellable = (item is not None and item.status in ("queued", "running")) or \
            (run is not None and run.status == "queued")
        self.cancel_button.setEnabled(cancellable)
        self.show_button.setEnabled(isinstance(monitor, TrainingMonitor))

    def _on_cancel_clicked(self) -> None:
        item = self._session_item()
        if isinstance(item, QueuedTraining) and item.state == "queued":
            self.queue.cancel(item)
        elif item is not None:
            monitor = getattr(item, "monitor", item)
            if monitor is not None and monitor.status == "running":
                monitor.show()
                monitor.raise_()
                monitor.cancel_button.click()       # the monitor says what happens next
        elif (run := self._project_run()) is not None and run.status == "queued":
            runs_repo.cancel_if_queued(self._conn(), run.id)
        self.refresh()

    def _on_show_clicked(self) -> None:
        item = self._session_item()
        monitor = getattr(item, "monitor", item)
        if isinstance(monitor, TrainingMonitor):
            monitor.show()
            monitor.raise_()
            monitor.activateWindow()


def _when(stamp: str | None) -> str:
    return (stamp or "")[:19].replace("T", " ")

