"""Training › Models…: the project's model versions (task, metrics, dataset, date, lineage,
trust, which is active); set active per task, compare versions re-evaluated on the same data,
delete, export ONNX or a bundle, import a file or bundle (untrusted until the user confirms).
Everything long runs in a ModelJob thread; the dialog only shows and asks."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView,
                             QInputDialog, QLabel, QMessageBox, QProgressBar, QPushButton,
                             QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout)

from src.db import runs as runs_repo
from src.db.project import Project
from src.db.records import MODEL_TASKS, ModelVersion
from src.errors import ModelError
from src.gui import dialogs
from src.gui.training import model_jobs
from src.gui.training.comparison_table import ComparisonTable
from src.training.models import ModelManager
from src.training.models.manager import SAM_ADAPTER_TASK
from src.training.models.usage import in_use_reason

COLUMNS = ("Active", "Version", "Task", "Metrics", "Dataset", "Created", "Lineage", "Trust")
_KEY_METRICS = ("mAP50-95(M)", "mAP50-95(B)", "mAP50(B)", "accuracy_top1", "balanced_accuracy",
                "accuracy", "val_iou", "samples")
TRUST_TEXT = (
    "<p>Version <b>{name}</b> was imported from outside this project.</p>"
    "<p>Its weights are a Python <i>pickle</i> (.pt): loading one runs whatever code the "
    "file contains, with your permissions — it could read or delete your files. "
    "Until you trust it, LabelLoop never loads it: it cannot be activated, compared, "
    "exported or used for pre-labelling.</p>"
    "<p>Trust it only if you know where it comes from (you or a colleague exported it). "
    "Its sha256 is recorded: if a file changes later, it is refused again.</p>")


class TrustDialog(QMessageBox):
    """Explains the risk of pickled weights; Yes trusts the version."""

    def __init__(self, version: ModelVersion, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("trustDialog")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Trust this model?")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setText(TRUST_TEXT.format(name=version.display_name))
        self.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        self.button(QMessageBox.StandardButton.Yes).setText("Trust it")
        self.button(QMessageBox.StandardButton.No).setText("Keep untrusted")
        self.setDefaultButton(QMessageBox.StandardButton.No)

    def ask(self) -> bool:
        return self.exec() == QMessageBox.StandardButton.Yes


class ModelsDialog(QDialog):
    models_changed = pyqtSignal()            # a version was activated, imported, trusted, deleted

    def __init__(self, project: Project, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsDialog")
        self.setWindowTitle("Models")
        self.project = project
        self.manager = ModelManager(project)
        self.versions: list[ModelVersion] = []
        self._trusted: dict[int, bool] = {}
        self._threads: list[QThread] = []
        self._job: model_jobs.ModelJob | None = None
        self._on_done = None
        self._build()
        self.reload()
        self.resize(1280, 680)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.table = QTableWidget(0, len(COLUMNS), objectName="modelsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.comparison = ComparisonTable(self)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.comparison)
        split.setSizes([300, 300])
        self.progress = QProgressBar(objectName="modelsProgress")
        self.progress.hide()
        self.message = QLabel("", objectName="modelsMessage", wordWrap=True)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(self._buttons())

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        specs = (("Set active", "setActiveButton", self._on_set_active_clicked),
                 ("Compare", "compareButton", self._on_compare_clicked),
                 ("Export ONNX…", "exportOnnxButton", lambda: self.export_selected("onnx")),
                 ("Export bundle…", "exportBundleButton", lambda: self.export_selected("bundle")),
                 ("Import…", "importButton", self._on_import_clicked),
                 ("Trust…", "trustButton", self._on_trust_clicked),
                 ("Delete…", "deleteButton", self._on_delete_clicked))
        self.buttons: dict[str, QPushButton] = {}
        for text, name, handler in specs:
            button = QPushButton(text, objectName=name)
            button.clicked.connect(lambda _checked=False, h=handler: self._guarded(h))
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        close = QPushButton("Close", objectName="closeModelsButton")
        close.clicked.connect(lambda _checked=False: self.close())
        row.addWidget(close)
        return row

    def _guarded(self, handler) -> None:
        """A user-fixable error becomes a dialog; nothing escapes into Qt."""
        try:
            handler()
        except (ModelError, OSError) as exc:
            self._show_error(exc)

    # -- the table -----------------------------------------------------------------------
    def reload(self) -> None:
        selected = set(self.selected_ids())
        self.versions = self.manager.list()
        self._trusted = {v.id: self.manager.is_trusted(v) for v in self.versions}
        self.table.setRowCount(len(self.versions))
        if not self.versions and not self.message.text():
            self.message.setText("No model versions yet: train one (Training › Train model…) "
                                 "or Import… a bundle or .pt file.")
        for row, version in enumerate(self.versions):
            for column, (text, tip) in enumerate(self._cells(version)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, version.id)
                item.setToolTip(tip)
                self.table.setItem(row, column, item)
            if version.id in selected:
                self.table.selectRow(row)
        self._update_buttons()

    def _cells(self, v: ModelVersion) -> list[tuple[str, str]]:
        trusted = self._trusted[v.id]
        metrics = {k.removeprefix("metrics/"): val for k, val in v.metrics.items()
                   if isinstance(val, (int, float))}
        shown = [k for k in _KEY_METRICS if k in metrics][:2]
        return [("● active" if v.is_active else "", f"active {v.task} model" if v.is_active
                 else _activate_words(v)),
                (v.display_name or f"{v.name} v{v.version}", f"{v.name}:v{v.version} (id {v.id})"),
                (v.task, v.model_type),
                ("  ".join(f"{k} {metrics[k]:.3f}" for k in shown),
                 "\n".join(f"{k}: {val:.4f}" for k, val in sorted(metrics.items()))),
                (_dataset_words(v.dataset), str(v.dataset.get("hash") or "")),
                ((v.created_at or "")[:16].replace("T", " "), v.created_at or ""),
                (self._lineage(v), " ← ".join(e.get("display_name") or "?" for e in v.lineage)
                 or self._base_words(v)),
                ("trusted" if trusted else "⚠ untrusted",
                 "its files are ours or were confirmed" if trusted else
                 "imported: Trust… before it can be used")]

    def _lineage(self, v: ModelVersion) -> str:
        if v.lineage and v.lineage[0].get("task") == "sam_base":
            return str(v.lineage[0].get("display_name") or "SAM base")
        if v.parent_id is not None:
            parent = next((p for p in self.versions if p.id == v.parent_id), None)
            return f"from {parent.display_name if parent else '#' + str(v.parent_id)}"
        if v.lineage:
            return f"from {v.lineage[0].get('display_name') or '?'}"
        base = self._base_words(v)
        if base:
            model = (base.removeprefix("base: ").split() or ["?"])[0].rstrip(":;,")
            return f"base: {model}" + (" (from scratch)" if "scratch" in base else "")
        return "imported" if v.origin == "imported" else "base model"

    def _base_words(self, v: ModelVersion) -> str:
        """What the version's run started from, as the run recorded it."""
        run = runs_repo.get_run(self.manager.conn, v.run_id) if v.run_id else None
        return (run.base_model or "") if run is not None else ""

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.versions[r].id for r in rows if r < len(self.versions)]

    def select_ids(self, ids: list[int]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, version in enumerate(self.versions):
            if version.id in ids:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def _selected(self) -> list[ModelVersion]:
        ids = self.selected_ids()
        return [v for v in self.versions if v.id in ids]

    def _update_buttons(self) -> None:
        chosen, busy = self._selected(), self.busy
        one = chosen[0] if len(chosen) == 1 else None
        usable = bool(chosen) and all(self._trusted[v.id] for v in chosen)
        enabled = {"setActiveButton": one is not None and usable and not one.is_active,
                   "compareButton": len(chosen) >= 2 and usable and not busy,
                   "exportOnnxButton": one is not None and usable and not busy
                   and one.task != SAM_ADAPTER_TASK,
                   "exportBundleButton": one is not None and usable and not busy,
                   "importButton": not busy,
                   "trustButton": one is not None and not self._trusted[one.id] and not busy,
                   "deleteButton": one is not None and not busy}
        for name, on in enabled.items():
            self.buttons[name].setEnabled(on)
        if chosen and not usable:
            self.message.setText("an untrusted version cannot be used: select it and click "
                                 "Trust… once you know where it comes from")

    # -- quick actions (in the GUI thread: one small transaction each) --------------------
    def _on_set_active_clicked(self) -> None:
        (version,) = self._selected()
        if not self.manager.is_trusted(version):
            raise ModelError(f"version {version.display_name} is not trusted", field="model",
                             hint="Trust… it first")
        active = self.manager.activate(version.id)
        self.message.setText(f"active {active.task} model: {active.display_name}")
        self._changed()

    def _on_delete_clicked(self) -> None:
        (version,) = self._selected()
        reason = in_use_reason(self.manager.conn, version)
        if reason:
            raise ModelError(f"version {version.display_name} is in use: {reason}",
                             field="model")
        if not dialogs.confirm(self, "Delete model version",
                               f"Delete version {version.display_name} and its files? "
                               f"Runs and datasets keep theirs. This cannot be undone."):
            return
        self.manager.delete(version.id)
        self.message.setText(f"deleted {version.display_name}")
        self._changed()

    def _changed(self) -> None:
        self.reload()
        self.models_changed.emit()

    # -- long work (a ModelJob thread each) ------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None

    def _on_compare_clicked(self) -> None:
        ids = self.selected_ids()
        self.comparison.clear_result()
        self._run("compare", model_jobs.compare_job(ids), self._on_compared)

    def _on_compared(self, result) -> None:
        self.comparison.show_result(result)
        self.message.setText(f"{len(result.evaluations)} versions re-evaluated on "
                             f"{result.dataset} ({result.split}); the best of each row in bold")

    def export_selected(self, fmt: str) -> None:
        """Ask where, then export the selected version (ONNX or bundle) in the background."""
        chosen = self._selected()
        if len(chosen) != 1:
            self.message.setText("select one version to export")
            return
        version = chosen[0]
        suffix, what = (".onnx", "ONNX model (*.onnx)") if fmt == "onnx" else \
            (".zip", "LabelLoop bundle (*.zip)")
        start = str(Path.home() / f"{version.display_name}{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, f"Export {version.display_name}", start, what)
        if not path:
            return
        target = Path(path) if Path(path).suffix else Path(path + suffix)
        self._run("export", model_jobs.export_job(version.id, fmt, target),
                  lambda out: self.message.setText(f"wrote {out}"))

    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", str(Path.home()),
                                              "Bundles and weights (*.zip *.pt)")
        if not path:
            return
        task = None
        if path.lower().endswith(".pt"):
            task, ok = QInputDialog.getItem(self, "Import weights", "Task of this .pt file:",
                                            list(MODEL_TASKS), 0, False)
            if not ok:
                return
        self._run("import", model_jobs.import_job(Path(path), task), self._on_imported)

    def _on_imported(self, version: ModelVersion) -> None:
        self._changed()
        self.select_ids([version.id])
        self.message.setText(f"imported {version.display_name}: untrusted until you confirm")
        self.ask_trust(version)

    def _on_trust_clicked(self) -> None:
        (version,) = self._selected()
        self.ask_trust(version)

    def ask_trust(self, version: ModelVersion) -> None:
        if self.manager.is_trusted(version) or self.busy:
            return
        if TrustDialog(version, self).ask():
            self._run("trust", model_jobs.trust_job(version.id), self._on_trusted)
        else:
            self.message.setText(f"{version.display_name} stays untrusted: it cannot be used")

    def _on_trusted(self, version: ModelVersion) -> None:
        self.message.setText(f"{version.display_name} is trusted")
        self._changed()

    def _run(self, title: str, job, on_done) -> None:
        if self.busy:
            return
        self._job = model_jobs.ModelJob(self.project.root, title, job)
        self._job.progress.connect(self._on_job_progress)
        self._on_done = on_done
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.message.setText(f"{title}…")
        thread = model_jobs.start_job(self._job, self)
        self._threads.append(thread)
        thread.finished.connect(lambda: self._threads.remove(thread))
        self._update_buttons()

    @pyqtSlot(int, int, str)
    def _on_job_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.message.setText(text)

    @pyqtSlot(object)
    def _on_job_finished(self, result) -> None:
        self._end_job()
        try:
            self._on_done(result)
        except (ModelError, OSError) as exc:
            self._show_error(exc)

    @pyqtSlot(object)
    def _on_job_failed(self, exc) -> None:
        self._end_job()
        self.message.setText(f"failed: {exc}")
        self._show_error(exc)

    def _end_job(self) -> None:
        self._job = None                  # its thread ends on its own right after
        self.progress.hide()
        self._update_buttons()

    def _show_error(self, exc: BaseException) -> None:
        self.message.setText(str(getattr(exc, "message", exc)))
        dialogs.show_error(self, exc)

    # -- closing ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """The project closes: wait for a job still at work."""
        for thread in list(self._threads):
            thread.quit()                 # ends its loop once the job's call has returned
            thread.wait()
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        event.accept()


def _activate_words(v: ModelVersion) -> str:
    if v.task == SAM_ADAPTER_TASK:
        return ("Set active makes it the default SAM adapter for tracking (it never becomes "
                "the segmenter predictions use)")
    return "Set active makes it the model of its task"


def _dataset_words(d: dict) -> str:
    if d.get("learned_from"):
        return f"learned from {d['learned_from']}"
    if d.get("name"):
        return f"{d['name']} v{d.get('version')}"
    if d.get("imported_from"):
        return f"imported from {d['imported_from']}"
    return d.get("path") or "—"

