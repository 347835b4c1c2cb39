"""The Training menu's commands: Train model… (dialog → queue → monitor), Training queue…,
Models…, Open TensorBoard (a real server for the project's runs/, reused, stopped when the
project or the app closes), and reattaching to runs that outlived their window."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, QUrl, pyqtSlot
from PyQt6.QtGui import QDesktopServices

from src.db import datasets as datasets_repo
from src.db import model_versions
from src.errors import TrainingError
from src.gui import dialogs
from src.gui.training.dataset_commands import DatasetCommands
from src.gui.training.follower import FollowingMonitor
from src.gui.training.models_dialog import ModelsDialog
from src.gui.training.monitor import TrainingMonitor
from src.gui.training.queue import QueueDialog, TrainingQueue
from src.gui.training.tensorboard import TensorBoardServer, TensorBoardStarter
from src.gui.training.train_dialog import TrainDialog
from src.training.live_runs import live_runs

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow


class TrainingMenu(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.train_dialog: TrainDialog | None = None
        self.monitors: list[TrainingMonitor] = []
        self.server: TensorBoardServer | None = None
        self._starter: TensorBoardStarter | None = None
        self.datasets = DatasetCommands(window, self.train)
        self.queue = TrainingQueue(self._open_monitor, self)
        self.models_dialog: ModelsDialog | None = None
        self.queue_dialog: QueueDialog | None = None

    def train(self) -> TrainDialog | None:
        session = self.window.session
        if session is None:
            return None
        conn = session.project.conn
        self.train_dialog = TrainDialog(session.project.root,
                                        datasets_repo.list_datasets(conn),
                                        model_versions.list_model_versions(conn), self.window)
        self.train_dialog.train_requested.connect(self._on_dialog_train_requested)
        self.train_dialog.show()
        return self.train_dialog

    @pyqtSlot(object)
    def _on_dialog_train_requested(self, request) -> None:
        entry = self.queue.submit(request)
        if entry.state == "queued":
            self.window.statusBar().showMessage(
                f"another training is running: queued ({len(self.queue.queued)} waiting); "
                f"it starts when that one ends — Training › Training queue…", 10000)

    def _open_monitor(self, request) -> TrainingMonitor:
        monitor = TrainingMonitor(request, self.window)
        self._watch(monitor)
        monitor.show()
        monitor.start()
        return monitor

    def _watch(self, monitor: TrainingMonitor) -> None:
        monitor.tensorboard_requested.connect(self.open_tensorboard)
        monitor.run_ended.connect(lambda *_: self._on_models_changed())
        monitor.model_activated.connect(lambda _version: self._on_models_changed())
        monitor.export_requested.connect(self._on_monitor_export_requested)
        self.monitors.append(monitor)

    def reattach(self) -> list[TrainingMonitor]:
        """Follow every run of the project still training in a process of its own."""
        session = self.window.session
        if session is None:
            return []
        followed = [self.follow(run) for run in live_runs(session.conn)]
        if followed:
            self.window.statusBar().showMessage(
                f"following {len(followed)} training run(s) still going in the background",
                10000)
        return followed

    def follow(self, run) -> FollowingMonitor:
        """A monitor following `run` from its files (started by another process)."""
        monitor = FollowingMonitor(self.window.session.project.root, run, self.window)
        self._watch(monitor)
        self.queue.add_followed(monitor)
        monitor.show()
        monitor.start()
        return monitor

    # -- models and queue ----------------------------------------------------------------
    def models(self) -> ModelsDialog | None:
        session = self.window.session
        if session is None:
            return None
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(session.project, self.window)
            self.models_dialog.models_changed.connect(self._on_models_changed)
        else:
            self.models_dialog.reload()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def training_queue(self) -> QueueDialog:
        if self.queue_dialog is None:
            self.queue_dialog = QueueDialog(
                self.queue, lambda: self.window.session.conn if self.window.session else None,
                self.window)
        self.queue_dialog.refresh()
        self.queue_dialog.show()
        self.queue_dialog.raise_()
        return self.queue_dialog

    def _on_models_changed(self) -> None:
        self.window.status.show_active_models(self.window.session)
        if self.models_dialog is not None and self.models_dialog.isVisible():
            self.models_dialog.reload()

    @pyqtSlot(object)
    def _on_monitor_export_requested(self, run_id) -> None:
        dialog = self.models()
        if dialog is None:
            return
        ids = [v.id for v in dialog.versions if v.run_id == run_id]
        if not ids:
            dialog.message.setText(f"run {run_id} registered no model version to export")
            return
        dialog.select_ids(ids[:1])
        dialog.export_selected("onnx")

    def open_tensorboard(self) -> None:
        session = self.window.session
        if session is None or (self._starter is not None and self._starter.isRunning()):
            return
        project = session.project
        if self.server is None or self.server.logdir != project.runs_dir:
            self.stop_tensorboard()
            self.server = TensorBoardServer(project.runs_dir, project.root / "logs" /
                                            "tensorboard.log")
        self.window.statusBar().showMessage("starting TensorBoard…", 5000)
        self._starter = TensorBoardStarter(self.server, self)
        self._starter.ready.connect(self._on_tensorboard_ready)
        self._starter.failed.connect(self._on_tensorboard_failed)
        self._starter.start()

    @pyqtSlot(str)
    def _on_tensorboard_ready(self, url: str) -> None:
        self.window.statusBar().showMessage(f"TensorBoard: {url}", 10000)
        QDesktopServices.openUrl(QUrl(url))

    @pyqtSlot(str)
    def _on_tensorboard_failed(self, reason: str) -> None:
        dialogs.show_error(self.window, TrainingError(reason, hint="see the log file named "
                                                                 "above"))

    def stop_tensorboard(self) -> None:
        if self.server is not None:
            self.server.stop()           # a starter still waiting sees it gone and ends
        if self._starter is not None:
            self._starter.wait(15000)
            self._starter = None

    def shutdown(self) -> None:
        """The app or project closes: ask about running trainings, stop TensorBoard."""
        self.datasets.close_dialog()
        if self.models_dialog is not None:
            self.models_dialog.shutdown()
            self.models_dialog.deleteLater()
            self.models_dialog = None
        if self.queue_dialog is not None:
            self.queue_dialog.close()
            self.queue_dialog.deleteLater()
            self.queue_dialog = None
        self.queue.clear()                   # waiting trainings end with the session
        for monitor in self.monitors:
            monitor.close()
            if monitor.running:          # "Stay" was chosen for a window that must close
                monitor.worker.detach()
                monitor.worker.wait(5000)
        self.monitors.clear()
        self.stop_tensorboard()
        self.server = None
