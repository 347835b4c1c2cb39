"""The training monitor: progress with ETA, live charts, current metrics, the log, and
Pause / Resume / Cancel; on completion the final metrics and report, on failure the reason
and Retry. It supervises the child through a TrainingWorker and never blocks the event loop."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit,
                             QProgressBar, QPushButton, QSplitter, QTextBrowser, QVBoxLayout)

from src.gui.training.charts import TrainingCharts
from src.gui.training.progress import TrainingProgress
from src.gui.training.worker import TrainingRequest, TrainingWorker

_REFRESH_MS = 250
_CHART_MS = 1000      # charts repaint once a second: each repaint costs tens of ms of GUI time
_LOG_LINES = 2000


class TrainingMonitor(QDialog):
    tensorboard_requested = pyqtSignal()
    run_ended = pyqtSignal(str, object)          # status, run id
    model_activated = pyqtSignal(object)         # the ModelVersion made active
    export_requested = pyqtSignal(object)        # run id: export the version it registered

    def __init__(self, request: TrainingRequest, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingMonitor")
        self.setWindowTitle("Training")
        self.request = request
        self.worker: TrainingWorker | None = None
        self.progress = TrainingProgress()
        self.status = "starting"
        self.run_id: int | None = None
        self.resumable = False           # the run has saved a checkpoint
        self._original = request
        self._dirty = False
        self._charts_dirty = False
        self._build()
        self._timer = QTimer(self, interval=_REFRESH_MS)
        self._timer.timeout.connect(self._refresh)
        self._timer.start()
        self._chart_timer = QTimer(self, interval=_CHART_MS)
        self._chart_timer.timeout.connect(self._refresh_charts)
        self._chart_timer.start()
        self.resize(1000, 680)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.title = QLabel(self._describe(self.request), wordWrap=True)
        self.bar = QProgressBar(objectName="trainingProgress", maximum=1000)
        self.bar.setFormat("starting…")
        self.state = QLabel("starting the training process…", objectName="trainingState")
        self.metrics_label = QLabel("", objectName="trainingMetrics", wordWrap=True)
        self.charts = TrainingCharts(self)
        self.log = QPlainTextEdit(readOnly=True, objectName="trainingLog")
        self.log.setMaximumBlockCount(_LOG_LINES)
        self.report = QTextBrowser(objectName="trainingReport")
        self.report.hide()
        split = QSplitter(Qt.Orientation.Vertical)
        for widget in (self.charts, self.log, self.report):
            split.addWidget(widget)
        layout = QVBoxLayout(self)
        for widget in (self.title, self.bar, self.state, self.metrics_label):
            layout.addWidget(widget)
        layout.addWidget(split, 1)
        layout.addLayout(self._buttons())

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.pause_button = self._button("Pause", "pauseButton", self._on_pause_clicked)
        self.resume_button = self._button("Resume", "resumeButton", self._on_resume_clicked)
        self.cancel_button = self._button("Cancel training", "cancelButton",
                                          self._on_cancel_clicked)
        self.retry_button = self._button("Retry", "retryButton", self._on_retry_clicked)
        self.set_active_button = self._button("Set active", "setActiveButton",
                                              self._on_set_active_clicked)
        self.tensorboard_button = self._button("Open in TensorBoard", "tensorboardButton",
                                               self.tensorboard_requested.emit)
        self.export_button = self._button("Export…", "exportButton",
                                          lambda: self.export_requested.emit(self.run_id))
        self.close_button = self._button("Close", "closeButton", self.close)
        for button in (self.pause_button, self.resume_button, self.cancel_button,
                       self.retry_button, self.set_active_button, self.export_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.tensorboard_button)
        row.addWidget(self.close_button)
        self._show_buttons(running=False)
        return row

    def _button(self, text: str, name: str, handler) -> QPushButton:
        button = QPushButton(text, objectName=name)
        button.clicked.connect(lambda _checked=False: handler())
        return button

    @staticmethod
    def _describe(request: TrainingRequest) -> str:
        if request.resume_run_id is not None:
            return f"<b>Resuming run {request.resume_run_id}</b>"
        return (f"<b>{Path(str(request.config)).stem}</b> on dataset <b>{request.dataset}</b>"
                + (f" — {' '.join(request.overrides)}" if request.overrides else ""))

    # -- running -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child (non-blocking)."""
        self.progress = TrainingProgress()
        self.status = "running"
        self.report.hide()
        worker = self._make_worker()
        worker.event_received.connect(self._on_worker_event)
        worker.log_line.connect(self._on_worker_log)
        worker.run_finished.connect(self._on_worker_finished)
        worker.run_failed.connect(self._on_worker_failed)
        self.worker = worker
        worker.start()
        self._show_buttons(running=True)
        self.state.setText("running")

    def _make_worker(self):
        """The supervisor of the next attempt (a reattached monitor follows a run instead)."""
        return TrainingWorker(self.request, self)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def _show_buttons(self, *, running: bool, paused: bool = False) -> None:
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(running and paused)
        self.cancel_button.setEnabled(running)
        self.retry_button.setVisible(self.status in ("failed", "cancelled"))
        self.set_active_button.setVisible(self.status == "completed")
        self.export_button.setVisible(self.status == "completed")

    @pyqtSlot(str, dict)
    def _on_worker_event(self, name: str, payload: dict) -> None:
        self.run_id = payload.get("run_id", self.run_id)
        self.progress.update(name, payload)
        self.resumable = self.resumable or name == "on_model_save"
        if payload.get("message"):
            self.log.appendPlainText(str(payload["message"]))
        self._dirty = True

    @pyqtSlot(str)
    def _on_worker_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    @pyqtSlot()
    def _refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.bar.setValue(int(self.progress.fraction * 1000))
        self.bar.setFormat(self.progress.summary())
        if self.progress.latest_metrics:
            self.metrics_label.setText("  ".join(
                f"{k}: {v:.3f}" for k, v in sorted(self.progress.latest_metrics.items())))
        self._charts_dirty = True
        if not self.running:                      # the end: the final curves at once
            self._refresh_charts()

    @pyqtSlot()
    def _refresh_charts(self) -> None:
        if self._charts_dirty:
            self._charts_dirty = False
            self.charts.refresh(self.progress)

    @pyqtSlot(dict)
    def _on_worker_finished(self, final: dict) -> None:
        self._dirty = True
        self._refresh()
        self.status = final.get("status", "completed")
        self.run_id = final.get("run_id", self.run_id)
        if self.status == "completed":
            self.bar.setValue(1000)
            self.bar.setFormat("done")
            self.state.setText(f"completed — run {self.run_id}: {final.get('run_dir')}")
            self._show_report(final.get("run_dir"))
        elif self.status == "queued":
            self.state.setText("queued: another training is using this machine; it runs after")
        else:
            self.state.setText(f"cancelled — a checkpoint was kept; Retry resumes run "
                               f"{self.run_id}")
        self._show_buttons(running=False)
        self.run_ended.emit(self.status, self.run_id)

    @pyqtSlot(str, object)
    def _on_worker_failed(self, reason: str, run_id) -> None:
        self.status = "failed"
        self.run_id = run_id if run_id is not None else self.run_id
        self.state.setText(f"failed: {reason}")
        self.log.appendPlainText(f"failed: {reason}")
        self._show_buttons(running=False)
        self.run_ended.emit("failed", self.run_id)

    def _show_report(self, run_dir: str | None) -> None:
        if not run_dir:
            return
        path = Path(run_dir)
        if not path.is_absolute():
            path = self.request.project_root / path
        report = path / "report.md"
        if report.is_file():
            self.report.setMarkdown(report.read_text(encoding="utf-8", errors="replace"))
            self.report.show()

    # -- buttons -------------------------------------------------------------------------
    def _on_pause_clicked(self) -> None:
        if self.worker:
            self.worker.pause()
            self.state.setText("paused (the training holds after its current batch)")
            self._show_buttons(running=True, paused=True)

    def _on_resume_clicked(self) -> None:
        if self.worker:
            self.worker.resume()
            self.state.setText("running")
            self._show_buttons(running=True)

    def _on_cancel_clicked(self) -> None:
        if self.worker:
            self.worker.cancel()
            self.state.setText("cancelling after the current batch (a checkpoint is kept)…")
            self.cancel_button.setEnabled(False)

    def _on_retry_clicked(self) -> None:
        if self.run_id is not None and self.resumable:
            self.request = self.request.resumed(self.run_id)
            self.log.appendPlainText(f"— retry: resuming run {self.run_id} —")
        else:                            # nothing saved yet: train again from the start
            self.request, self.run_id = self._original, None
            self.log.appendPlainText("— retry: no checkpoint was saved, starting again —")
        self.title.setText(self._describe(self.request))
        self.start()

    def _on_set_active_clicked(self) -> None:
        from src.db import model_versions
        from src.db.project import Project
        with Project.open(self.request.project_root, create=False) as project:
            versions = [v for v in model_versions.list_model_versions(project.conn)
                        if v.run_id == self.run_id]
            if not versions:
                self.state.setText("this run registered no model version")
                return
            active = model_versions.set_active(project.conn, versions[-1].id)
        self.state.setText(f"active {active.task} model: {active.name} v{active.version}")
        self.model_activated.emit(active)

    # -- closing -------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if not self.running:
            event.accept()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          "A training is still running. Cancel it (a checkpoint is kept), or "
                          "keep it training in the background?", parent=self)
        cancel = box.addButton("Cancel training", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Stay", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is cancel:
            self.worker.cancel()
            event.accept()
        elif box.clickedButton() is keep:
            self.worker.detach()
            self.worker.wait(5000)
            event.accept()
        else:
            event.ignore()

    def shutdown(self, timeout_ms: int = 120000) -> None:
        """Wait for the worker thread (the child ends on its own or was cancelled)."""
        if self.worker is not None and self.worker.isRunning():
            self.worker.wait(timeout_ms)
