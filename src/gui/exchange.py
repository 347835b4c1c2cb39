"""File › Import annotations… and File › Export…: the same src/data/formats calls as the CLI
(`import PATH --format`, `dataset export`), run by a worker in a QThread, with a busy bar
while they run and the CLI's JSON summary when they end."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout,
                             QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout,
                             QWidget)

from src.data.formats import FORMATS, export_annotations, import_annotations

# What each kind of dataset version exports as: image folders have no annotations to write.
FOLDER_TASKS = ("classify", "crops")
from src.db import datasets as dataset_repo
from src.db.project import Project
from src.gui import dialogs
from src.gui.session import ProjectSession
from src.gui.workers import start_in_thread

# Where each format's annotations usually are, for the file dialog's hint.
IMPORT_HINTS = {"yolo": "the data.yaml file or the dataset folder",
                "coco": "the COCO .json file, or the dataset folder holding annotations/",
                "voc": "the folder of Pascal VOC .xml files",
                "labelme": "the folder of labelme .json files"}


class ExchangeWorker(QObject):
    """Runs one import or export on its own store connection; reports the summary dict."""
    finished = pyqtSignal(object)          # summary dict, as the CLI prints it
    failed = pyqtSignal(object)            # exception

    def __init__(self, project_root: Path, job: Callable[[Project], dict]) -> None:
        super().__init__()
        self.project_root = project_root
        self.job = job

    @pyqtSlot()
    def run(self) -> None:
        try:
            with Project.open(self.project_root, create=False) as project:
                summary = self.job(project)
        except Exception as exc:   # noqa: BLE001 — every failure leaves as a signal (a dialog)
            self.failed.emit(exc)
            return
        self.finished.emit(summary)


class _ExchangeDialog(QDialog):
    """Format + path form, a Run button, a busy bar and the summary; subclasses say what runs."""
    job_done = pyqtSignal(object)          # summary dict

    def __init__(self, session: ProjectSession, title: str, run_text: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.session = session
        self._job: tuple[QThread, ExchangeWorker] | None = None
        self.format_combo = QComboBox(self)
        self.format_combo.setObjectName("formatCombo")
        self.format_combo.addItems(FORMATS)
        self.path_edit = QLineEdit(self)
        self.path_edit.setObjectName("pathEdit")
        browse = QPushButton("Browse…", self)
        browse.setObjectName("browseButton")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.form = QFormLayout()
        self.form.addRow("Format", self.format_combo)
        self.form.addRow("Path", path_row)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("exchangeProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")             # nothing has run yet
        self.summary = QPlainTextEdit(self)
        self.summary.setObjectName("exchangeSummary")
        self.summary.setReadOnly(True)
        self.run_button = QPushButton(run_text, self)
        self.run_button.setObjectName("runExchangeButton")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.close_button = QPushButton("Close", self)
        self.close_button.setObjectName("closeExchangeButton")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self._on_close_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary, 1)
        layout.addLayout(buttons)
        self.resize(560, 420)

    @property
    def running(self) -> bool:
        return not self.run_button.isEnabled()

    def _job_for(self, path: Path, fmt: str) -> Callable[[Project], dict]:
        """The import or export to run on the worker's own project connection."""
        raise NotImplementedError(f"{type(self).__name__} must say what it runs")

    def _browse(self) -> str:
        """Ask for the folder or file (a file dialog); '' when cancelled."""
        raise NotImplementedError(f"{type(self).__name__} must say what it asks for")

    @pyqtSlot()
    def _on_browse_clicked(self) -> None:
        chosen = self._browse()
        if chosen:
            self.path_edit.setText(chosen)

    @pyqtSlot()
    def _on_run_clicked(self) -> None:
        text = self.path_edit.text().strip()
        if not text or self.running:
            self.summary.setPlainText("Choose a path first." if not text else self.summary.toPlainText())
            return
        job = self._job_for(Path(text).expanduser(), self.format_combo.currentText())
        worker = ExchangeWorker(self.session.project.root, job)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        self.summary.setPlainText("Working…")
        self.progress.setRange(0, 0)          # busy: the format code reports no steps
        self.run_button.setEnabled(False)
        self.close_button.setEnabled(False)
        thread = start_in_thread(worker, self)
        self._job = (thread, worker)          # keeps the parentless worker alive
        thread.finished.connect(self._on_thread_finished)

    def _on_thread_finished(self) -> None:
        self._job = None

    def _end_job(self) -> None:
        self.progress.setRange(0, 1)
        self.run_button.setEnabled(True)
        self.close_button.setEnabled(True)

    def _on_worker_finished(self, summary: dict) -> None:
        self._end_job()
        self.progress.setFormat("done")
        self.progress.setValue(1)
        self.summary.setPlainText(json.dumps(summary, indent=2, sort_keys=True))
        self.job_done.emit(summary)

    def _on_worker_failed(self, exc: BaseException) -> None:
        self._end_job()
        self.progress.setFormat("failed")
        self.summary.setPlainText(f"Failed: {exc}")
        dialogs.show_error(self, exc)

    def wait(self) -> None:
        """Block until a running job ends (the window calls this before it closes)."""
        if self._job is not None:
            self._job[0].wait()

    @pyqtSlot()
    def _on_close_clicked(self) -> None:
        self.close()

    def closeEvent(self, event) -> None:
        if self.running:
            event.ignore()               # the job finishes first; its summary is the answer
        else:
            super().closeEvent(event)


class ImportAnnotationsDialog(_ExchangeDialog):
    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(session, "Import annotations", "Import", parent)
        self.setObjectName("importAnnotationsDialog")
        self.format_combo.currentTextChanged.connect(self._on_format_changed)
        self._on_format_changed(self.format_combo.currentText())

    def _on_format_changed(self, fmt: str) -> None:
        self.path_edit.setPlaceholderText(IMPORT_HINTS.get(fmt, ""))

    def _browse(self) -> str:
        fmt = self.format_combo.currentText()
        if fmt in ("yolo", "coco"):
            pattern = "COCO JSON (*.json)" if fmt == "coco" else "YOLO data.yaml (*.yaml *.yml)"
            path, _ = QFileDialog.getOpenFileName(self, f"Import {fmt}", "",
                                                  f"{pattern};;All files (*)")
            return path
        return QFileDialog.getExistingDirectory(self, f"Import {fmt} folder")

    def _job_for(self, path: Path, fmt: str) -> Callable[[Project], dict]:
        return lambda project: import_annotations(project, path, fmt)


class ExportDialog(_ExchangeDialog):
    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(session, "Export annotations", "Export", parent)
        self.setObjectName("exportDialog")
        self.what_combo = QComboBox(self)
        self.what_combo.setObjectName("exportWhatCombo")
        self.form.insertRow(0, "What", self.what_combo)   # first: it decides the formats
        self.path_edit.setPlaceholderText("a new or empty folder")
        self._tasks: dict[str, str] = {}        # dataset reference -> its task
        self.what_combo.currentIndexChanged.connect(self._on_what_changed)
        self._fill_what()

    def _fill_what(self) -> None:
        """The project, or one of its dataset versions (listed afresh)."""
        current = self.what_combo.currentData()
        self.what_combo.blockSignals(True)
        self.what_combo.clear()
        self.what_combo.addItem("Whole project (accepted annotations)", None)
        for ds in dataset_repo.list_datasets(self.session.conn):
            ref = f"{ds.name}:v{ds.version}"
            self._tasks[ref] = ds.task
            self.what_combo.addItem(f"Dataset {ref} ({ds.task})", ref)
        self.what_combo.setCurrentIndex(max(self.what_combo.findData(current), 0))
        self.what_combo.blockSignals(False)
        self._on_what_changed(self.what_combo.currentIndex())

    @pyqtSlot(int)
    def _on_what_changed(self, _index: int) -> None:
        """Offer the formats the selection can be written in: image folders for a
        classify/crops version, annotation formats otherwise."""
        task = self._tasks.get(self.what_combo.currentData())
        formats = ["imagefolder"] if task in FOLDER_TASKS else list(FORMATS)
        if [self.format_combo.itemText(i) for i in range(self.format_combo.count())] != formats:
            current = self.format_combo.currentText()
            self.format_combo.clear()
            self.format_combo.addItems(formats)
            self.format_combo.setCurrentIndex(max(self.format_combo.findText(current), 0))

    def showEvent(self, event) -> None:
        if not self.running:
            self._fill_what()            # datasets built since the dialog was made
        super().showEvent(event)

    def _browse(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Export into folder")

    def _job_for(self, path: Path, fmt: str) -> Callable[[Project], dict]:
        dataset = self.what_combo.currentData()
        return lambda project: export_annotations(project, path, fmt, dataset=dataset)
