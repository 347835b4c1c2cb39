"""The Training menu's commands: Train model… (dialog → monitor) and Open TensorBoard (a real
server for the project's runs/, reused, stopped when the project or the app closes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, QUrl, pyqtSlot
from PyQt6.QtGui import QDesktopServices

from src.db import datasets as datasets_repo
from src.db import model_versions
from src.errors import TrainingError
from src.gui import dialogs
from src.gui.training.dataset_commands import DatasetCommands
from src.gui.training.monitor import TrainingMonitor
from src.gui.training.tensorboard import TensorBoardServer, TensorBoardStarter
from src.gui.training.train_dialog import TrainDialog

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
        monitor = TrainingMonitor(request, self.window)
        monitor.tensorboard_requested.connect(self.open_tensorboard)
        monitor.run_ended.connect(lambda *_: self.window.status.show_active_models(
            self.window.session))
        self.monitors.append(monitor)
        monitor.show()
        monitor.start()

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
        for monitor in self.monitors:
            monitor.close()
            if monitor.running:          # "Stay" was chosen for a window that must close
                monitor.worker.detach()
                monitor.worker.wait(5000)
        self.monitors.clear()
        self.stop_tensorboard()
        self.server = None
