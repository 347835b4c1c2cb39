"""Training › Build dataset…: every option of `dataset build` (the same DatasetSpec, so the
same validation, shown inline with Build disabled until it passes), the annotation check's
findings, an augmentation preview, the build in the background with progress, then the
report (class × split) and "Train on this dataset…"."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QLocale, Qt, QThread, QTimer, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFileDialog,
                             QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                             QListWidget, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                             QWidget)

from src.data.augment import load_pipelines
from src.data.checks import check_project
from src.data.datasets import AugmentSpec, DatasetSpec
from src.data.datasets.spec import GROUP_BY, SPLITS, TASKS
from src.db import dataset_exclusions
from src.db import sources as source_repo
from src.errors import LabelLoopError
from src.gui.guard import reports_errors
from src.gui.session import ProjectSession
from src.gui.training.augment_preview import PreviewGrid
from src.gui.training.dataset_classes import ClassTable
from src.gui.training.dataset_report import ReportBox
from src.gui.training.dataset_workers import BuildWorker, PreviewWorker

TASK_LABELS = {"detect": "Detection (boxes)", "segment": "Segmentation (polygons)",
               "classify": "Classification (frame tags)",
               "crops": "Crops (one image per box, for crop classifiers)"}
PREVIEW_N = 6


@dataclass
class FrameChoice:
    """An entry of "Frames": a label and the frame ids it stands for (None: all)."""
    label: str
    frame_ids: list[int] | None


class DatasetDialog(QDialog):
    train_requested = pyqtSignal(str, object)      # 'NAME:vN', base weights ('model:ID') or None
    built = pyqtSignal(object)                     # DatasetRecord

    def __init__(self, session: ProjectSession, frame_choices: list[FrameChoice], *,
                 prefer_frame: int | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("datasetDialog")
        self.setWindowTitle("Build dataset")
        self.session = session
        self.project_root = session.project.root
        self.prefer_frame = prefer_frame
        self.fixed_spec: DatasetSpec | None = None     # retrain: build exactly this
        self.base_weights: str | None = None           # retrain: train on from this model
        self.record = None
        self._jobs: list[tuple[QThread, object]] = []
        self._building = False
        self._preview_running = self._preview_again = self._closing = False
        self._build_ui(frame_choices)
        self._on_task_changed()
        self.run_check()
        self._preview_timer.start()

    # ---- layout ------------------------------------------------------------------------
    def _build_ui(self, frame_choices: list[FrameChoice]) -> None:
        self.form = QWidget(self)
        left = QVBoxLayout(self.form)
        left.setContentsMargins(0, 0, 0, 0)
        left.addLayout(self._settings_form(frame_choices))
        self.classes = ClassTable(self.form)
        self.classes.changed.connect(self.validate)
        left.addWidget(QLabel("Classes (untick to leave out; same name merges):"))
        left.addWidget(self.classes, 1)
        right = QVBoxLayout()
        right.addWidget(self._check_box())
        right.addWidget(self._preview_box(), 1)
        right.addWidget(self._report_box())
        columns = QHBoxLayout()
        columns.addWidget(self.form, 5)
        columns.addLayout(right, 6)
        layout = QVBoxLayout(self)
        self.note = QLabel(wordWrap=True, objectName="retrainNote")
        self.note.hide()
        layout.addWidget(self.note)
        layout.addLayout(columns, 1)
        layout.addLayout(self._bottom_row())
        self.resize(1180, 780)

    def _settings_form(self, frame_choices: list[FrameChoice]) -> QFormLayout:
        self.name = QLineEdit(objectName="datasetNameEdit")
        self.task = QComboBox(objectName="taskCombo")
        for task in TASKS:
            self.task.addItem(TASK_LABELS[task], task)
        self.frames = QComboBox(objectName="framesCombo")
        for choice in frame_choices:
            self.frames.addItem(choice.label, choice.frame_ids)
        excluded = len(dataset_exclusions.excluded_frame_ids(self.session.conn))
        self.excluded_note = QLabel(
            f"{excluded} frame(s) marked \"exclude from datasets\" in the gallery are always "
            "left out." if excluded else "No frame is marked \"exclude from datasets\" "
            "(gallery: right click).", wordWrap=True, objectName="excludedNote")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Task", self.task)
        form.addRow("Source projects", self._sources_row())
        form.addRow("Frames", self.frames)
        form.addRow("", self.excluded_note)
        form.addRow("Annotations", self._kinds_row())
        form.addRow("Split train/val/test", self._split_row())
        self.seed = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1, value=42)
        form.addRow("Seed", self.seed)
        form.addRow("Grouping", self._group_row())
        self.min_per_class = QSpinBox(objectName="minPerClassSpin", minimum=0, maximum=100000,
                                      value=1)
        form.addRow("Minimum per class", self.min_per_class)
        self.background = QDoubleSpinBox(objectName="backgroundSpin", minimum=0, maximum=10,
                                         singleStep=0.05, decimals=2)
        form.addRow("Background fraction", self.background)
        form.addRow("Augmentation", self._augment_row())
        self._tooltips()
        self.name.textChanged.connect(self.validate)
        self.task.currentIndexChanged.connect(lambda _i: self._on_task_changed())
        self.frames.currentIndexChanged.connect(lambda _i: self._on_frames_changed())
        for spin in (self.seed, self.min_per_class, self.background):
            spin.valueChanged.connect(lambda _v: self.validate())
        self.seed.valueChanged.connect(lambda _v: self._preview_timer.start())
        return form

    def _tooltips(self) -> None:
        help_of = {f.name: f.metadata.get("help", "")
                   for f in DatasetSpec.__dataclass_fields__.values()}
        for widget, key in ((self.name, "name"), (self.task, "task"), (self.seed, "seed"),
                            (self.frames, "frames"), (self.min_per_class, "min_per_class"),
                            (self.background, "background"), (self.group_by, "group_by"),
                            (self.block_size, "block_size"), (self.kind_box, "kinds"),
                            (self.kind_polygon, "kinds"), (self.segment_boxes, "segment_boxes"),
                            (self.oversample, "augment")):
            widget.setToolTip(help_of[key])

    def _sources_row(self) -> QWidget:
        self.sources = QListWidget(objectName="sourcesList")
        self.sources.addItem(f"this project ({self.project_root.name})")
        self.sources.setMaximumHeight(56)
        add = QPushButton("Add project…", objectName="addSourceButton", autoDefault=False)
        add.clicked.connect(self._on_add_source_clicked)
        remove = QPushButton("Remove", objectName="removeSourceButton", autoDefault=False)
        remove.clicked.connect(self._on_remove_source_clicked)
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        return _row(self.sources, buttons)

    def _kinds_row(self) -> QWidget:
        self.kind_box = QCheckBox("boxes", objectName="kindBoxCheck", checked=True)
        self.kind_polygon = QCheckBox("polygons (as their box)", objectName="kindPolygonCheck",
                                      checked=True)
        self.segment_boxes = QComboBox(objectName="segmentBoxesCombo")
        self.segment_boxes.addItem("polygons; skip boxes", "skip")
        self.segment_boxes.addItem("polygons; refuse if a box is found", "reject")
        self.tags_note = QLabel("frame tags (one per frame)", objectName="tagsNote")
        for check in (self.kind_box, self.kind_polygon):
            check.toggled.connect(lambda _on: self.validate())
        self.segment_boxes.currentIndexChanged.connect(lambda _i: self.validate())
        return _row(self.kind_box, self.kind_polygon, self.segment_boxes, self.tags_note)

    def _split_row(self) -> QWidget:
        self.split = []
        for name, value in zip(SPLITS, (0.7, 0.2, 0.1)):
            spin = QDoubleSpinBox(objectName=f"{name}RatioSpin", minimum=0.0, maximum=1.0,
                                  singleStep=0.05, decimals=2, value=value)
            spin.setLocale(QLocale.c())       # '0.7' whatever the desktop's decimal comma
            spin.setKeyboardTracking(True)
            spin.valueChanged.connect(lambda _v: self.validate())
            self.split.append(spin)
        return _row(*self.split)

    def _group_row(self) -> QWidget:
        self.group_by = QComboBox(objectName="groupByCombo")
        self.group_by.addItems(GROUP_BY)
        self.block_size = QSpinBox(objectName="blockSizeSpin", minimum=1, maximum=100000,
                                   value=10, prefix="blocks of ", suffix=" frames")
        self.group_by.currentIndexChanged.connect(lambda _i: self.validate())
        self.block_size.valueChanged.connect(lambda _v: self.validate())
        return _row(self.group_by, self.block_size)

    def _augment_row(self) -> QWidget:
        self.pipeline = QComboBox(objectName="pipelineCombo")
        try:
            self.pipeline.addItems(load_pipelines())
        except LabelLoopError as exc:
            self.pipeline.setToolTip(str(exc))
        self.pipeline.currentIndexChanged.connect(lambda _i: self._preview_timer.start())
        self.pipeline.currentIndexChanged.connect(lambda _i: self.validate())
        self.oversample = QCheckBox("oversample minority classes (× in the class table)",
                                    objectName="oversampleCheck")
        self.oversample.toggled.connect(lambda _on: self.validate())
        return _row(self.pipeline, self.oversample)

    def _check_box(self) -> QGroupBox:
        box = QGroupBox("Annotation check", objectName="checkGroup")
        self.check_summary = QLabel(wordWrap=True, objectName="checkSummaryLabel")
        self.check_list = QListWidget(objectName="checkList")
        self.check_list.setMaximumHeight(90)
        layout = QVBoxLayout(box)
        layout.addWidget(self.check_summary)
        layout.addWidget(self.check_list)
        return box

    def _preview_box(self) -> QGroupBox:
        box = QGroupBox("Augmentation preview (the same frame through the pipeline)",
                        objectName="previewGroup")
        self.preview_n = QSpinBox(objectName="previewCountSpin", minimum=1, maximum=12,
                                  value=PREVIEW_N, suffix=" copies")
        self.preview_n.valueChanged.connect(lambda _v: self._preview_timer.start())
        again = QPushButton("Draw again", objectName="previewButton", autoDefault=False)
        again.clicked.connect(self._on_preview_clicked)
        self.preview_status = QLabel(objectName="previewStatus", wordWrap=True)
        self.preview = PreviewGrid(box)
        layout = QVBoxLayout(box)
        layout.addLayout(_hbox(self.preview_n, again, self.preview_status))
        layout.addWidget(self.preview, 1)
        self._preview_timer = QTimer(self, singleShot=True, interval=250)
        self._preview_timer.timeout.connect(self.refresh_preview)
        return box

    def _report_box(self) -> ReportBox:
        self.report_box = ReportBox(self)
        self.report_table = self.report_box.table
        self.train_button = self.report_box.train_button
        self.train_button.clicked.connect(self._on_train_clicked)
        return self.report_box

    def _bottom_row(self) -> QHBoxLayout:
        self.problem = QLabel(wordWrap=True, objectName="datasetProblem")
        self.problem.setStyleSheet("color: #b00020")
        self.progress = QProgressBar(objectName="buildProgress")
        self.progress.hide()
        self.build_button = QPushButton("Build dataset", objectName="buildDatasetButton",
                                        autoDefault=False)
        self.build_button.clicked.connect(self._on_build_clicked)
        self.close_button = QPushButton("Close", objectName="closeDatasetButton",
                                        autoDefault=False)
        self.close_button.clicked.connect(self._on_close_clicked)
        row = QHBoxLayout()
        row.addWidget(self.problem, 1)
        row.addWidget(self.progress)
        row.addWidget(self.build_button)
        row.addWidget(self.close_button)
        return row

    # ---- state -------------------------------------------------------------------------
    @property
    def task_name(self) -> str:
        return self.task.currentData()

    def _on_task_changed(self) -> None:
        task = self.task_name
        self.kind_box.setVisible(task in ("detect", "crops"))
        self.kind_polygon.setVisible(task in ("detect", "crops"))
        self.segment_boxes.setVisible(task == "segment")
        self.tags_note.setVisible(task == "classify")
        wanted = "tag" if task == "classify" else "object"
        self.classes.set_classes(self.session.classes(wanted))
        if not self.name.text() or self.name.text() in TASKS:
            self.name.setText(task)
        self.validate()

    def _on_frames_changed(self) -> None:
        self.validate()
        self._preview_timer.start()

    def spec(self) -> DatasetSpec:
        """The DatasetSpec the widgets describe (DatasetError when they are not valid)."""
        if self.fixed_spec is not None:
            return self.fixed_spec
        task = self.task_name
        kinds = None
        if task in ("detect", "crops"):
            kinds = [k for k, c in (("box", self.kind_box), ("polygon", self.kind_polygon))
                     if c.isChecked()]
        augment = AugmentSpec(self.pipeline.currentText(), self.classes.factors()) \
            if self.oversample.isChecked() else None
        return DatasetSpec(
            name=self.name.text().strip(), task=task, sources=self._sources(),
            split=tuple(s.value() for s in self.split), seed=self.seed.value(),
            group_by=self.group_by.currentText(), block_size=self.block_size.value(),
            drop=self.classes.drop(), mapping=self.classes.mapping(),
            min_per_class=self.min_per_class.value(), background=self.background.value(),
            augment=augment, frames=self.frames.currentData(), kinds=kinds,
            segment_boxes=self.segment_boxes.currentData())

    def _sources(self) -> list[Path]:
        others = [Path(self.sources.item(r).text()) for r in range(1, self.sources.count())]
        return [self.project_root, *others] if others else []

    def validate(self) -> bool:
        """Show why the settings cannot be built (the CLI's own checks); Build follows."""
        problem = None
        try:
            spec = self.spec()
            if spec.augment is not None and not spec.augment.factors:
                problem = "oversampling is on but no class has a factor above 1 (× column)"
        except LabelLoopError as exc:
            problem = str(exc)
        others = self.sources.count() > 1          # classes may come from other projects
        if not others and not self.session.classes(
                "tag" if self.task_name == "classify" else "object"):
            problem = problem or ("this project has no "
                                  f"{'frame tags' if self.task_name == 'classify' else 'classes'}"
                                  " yet: add and annotate some first")
        self.problem.setText(problem or "")
        self.build_button.setEnabled(problem is None and not self._building)
        return problem is None

    # ---- annotation check ----------------------------------------------------------------
    @reports_errors
    def run_check(self) -> None:
        findings = check_project(self.session.project)
        names = {s.id: s.name for s in source_repo.list_sources(self.session.conn)}
        self.check_list.clear()
        for f in findings:
            cls = self.session.class_by_id(f.annotation.class_id)
            self.check_list.addItem(
                f"{names.get(f.frame.source_id, f.frame.source_id)} frame {f.frame.frame_index}:"
                f" {f.annotation.kind} '{cls.name if cls else f.annotation.class_id}': "
                f"{f.message}")
        self.check_list.setVisible(bool(findings))
        self.check_summary.setText(
            "No problems found." if not findings else
            f"{len(findings)} problem(s). The build clips shapes to the frame and skips those "
            "with no area left; fix them with Tools › Check annotations.")

    # ---- preview -----------------------------------------------------------------------
    @pyqtSlot()
    def _on_preview_clicked(self) -> None:
        self.refresh_preview()

    def refresh_preview(self) -> None:
        if self._closing:
            return
        if self._preview_running:
            self._preview_again = True
            return
        if not self.pipeline.currentText():
            self.preview_status.setText("no augmentation pipeline in configs/augment.yaml")
            return
        self._preview_running, self._preview_again = True, False
        self.preview_status.setText("drawing…")
        worker = PreviewWorker(self.project_root, self.frames.currentData(), self.prefer_frame,
                               self.pipeline.currentText(), self.preview_n.value(),
                               self.seed.value())
        worker.finished.connect(self._on_preview_finished)
        worker.failed.connect(self._on_preview_failed)
        self._start(worker)

    @pyqtSlot(object, object)
    def _on_preview_finished(self, sample, images) -> None:
        self._preview_running = False
        self.preview.show_images(images)
        self.preview_status.setText(
            "no annotated frame to preview on" if sample is None else
            f"{len(images)} copies of frame id {sample.frame_id} ({self.pipeline.currentText()})")
        if self._preview_again:
            self.refresh_preview()

    @pyqtSlot(object)
    def _on_preview_failed(self, exc) -> None:
        self._preview_running = False
        self.preview.clear()
        self.preview_status.setText(f"preview failed: {exc}")

    # ---- build -------------------------------------------------------------------------
    @pyqtSlot()
    def _on_build_clicked(self) -> None:
        self.start_build()

    @reports_errors
    def start_build(self) -> None:
        if self._building or not self.validate():
            return
        self.run_check()
        spec = self.spec()
        self._building = True
        self.build_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self.report_box.hide()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.problem.setText(f"building {spec.name}…")
        worker = BuildWorker(self.project_root, spec)
        worker.progress.connect(self._on_build_progress)
        worker.finished.connect(self._on_build_finished)
        worker.failed.connect(self._on_build_failed)
        self._start(worker)

    @pyqtSlot(str, int, int)
    def _on_build_progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        else:
            self.progress.setRange(0, 0)
        self.progress.setFormat(f"{stage} %v/%m" if total else stage)

    @pyqtSlot(object, object)
    def _on_build_finished(self, record, report: dict) -> None:
        self._end_build()
        self.record = record
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("built")
        self.problem.setText("")
        self.report_box.show_report(self.ref, record, report)
        self.built.emit(record)
        if self.base_weights is not None:           # retrain: straight to the train dialog
            self.train_requested.emit(self.ref, self.base_weights)

    @pyqtSlot(object)
    def _on_build_failed(self, exc) -> None:
        self._end_build()
        self.progress.hide()
        self.problem.setText(f"build failed: {exc}")

    def _end_build(self) -> None:
        self._building = False
        self.close_button.setEnabled(True)
        self.validate()

    @property
    def ref(self) -> str:
        return f"{self.record.name}:v{self.record.version}"

    @pyqtSlot()
    def _on_train_clicked(self) -> None:
        if self.record is not None:
            self.train_requested.emit(self.ref, self.base_weights)

    # ---- sources -----------------------------------------------------------------------
    @pyqtSlot()
    @reports_errors
    def _on_add_source_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a source project")
        if not folder:
            return
        path = Path(folder).resolve()
        if not (path / "project.db").is_file():
            raise LabelLoopError("not a LabelLoop project (no project.db)", path=path,
                                 hint="choose the folder that holds project.db")
        if path != self.project_root.resolve() and not self.sources.findItems(
                str(path), Qt.MatchFlag.MatchExactly):
            self.sources.addItem(str(path))
        self.validate()

    @pyqtSlot()
    def _on_remove_source_clicked(self) -> None:
        row = self.sources.currentRow()
        if row > 0:
            self.sources.takeItem(row)
            self.validate()

    # ---- retrain -----------------------------------------------------------------------
    def use_fixed_spec(self, spec: DatasetSpec, base_weights: str | None, note: str) -> None:
        """Build exactly `spec` (the settings of an earlier version), shown but locked."""
        self.task.setCurrentIndex(self.task.findData(spec.task))
        self.name.setText(spec.name)
        for spin, value in zip(self.split, spec.split):
            spin.setValue(value)
        self.seed.setValue(spec.seed)
        self.group_by.setCurrentText(spec.group_by)
        self.block_size.setValue(spec.block_size)
        self.min_per_class.setValue(spec.min_per_class)
        self.background.setValue(spec.background)
        self._show_spec_choices(spec)
        self.fixed_spec, self.base_weights = spec, base_weights
        self.form.setEnabled(False)
        self.note.setText(note)
        self.note.show()
        self.validate()

    def _show_spec_choices(self, spec: DatasetSpec) -> None:
        kinds = spec.used_kinds
        self.kind_box.setChecked("box" in kinds)
        self.kind_polygon.setChecked("polygon" in kinds)
        self.segment_boxes.setCurrentIndex(self.segment_boxes.findData(spec.segment_boxes))
        for path in spec.sources:
            if Path(path).resolve() != self.project_root.resolve():
                self.sources.addItem(str(path))
        if spec.frames is not None:
            self.frames.addItem(f"the frames of {spec.name} (+ labelled since)", spec.frames)
            self.frames.setCurrentIndex(self.frames.count() - 1)
        factors = spec.augment.factors if spec.augment is not None else {}
        if spec.augment is not None:
            self.pipeline.setCurrentText(spec.augment.pipeline)
            self.oversample.setChecked(True)
        keep = None if spec.classes is None else {n.casefold() for n in spec.classes}
        drop = {n.casefold() for n in spec.drop}
        mapping = {k.casefold(): v for k, v in spec.mapping.items()}
        self.classes.show_choices(
            lambda n: n.casefold() not in drop and (keep is None or n.casefold() in keep),
            lambda n: mapping.get(n.casefold(), n),
            lambda n: factors.get(mapping.get(n.casefold(), n), 1))

    # ---- threads and closing -----------------------------------------------------------
    def _start(self, worker) -> None:
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: the thread ends as soon as the worker reports, so closing can wait for it
        # without running the event loop (a queued quit would only run after the wait).
        for signal in (worker.finished, worker.failed):
            signal.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        job = (thread, worker)            # keeps the parentless worker alive until it ends
        self._jobs.append(job)
        thread.finished.connect(lambda: self._jobs.remove(job) if job in self._jobs else None)
        thread.start()

    def wait_for_jobs(self, timeout_ms: int = 120000) -> None:
        """Let running jobs end (a build cannot be interrupted half-way: it is atomic);
        no new preview starts after this."""
        self._closing = True
        self._preview_timer.stop()
        for thread, _worker in list(self._jobs):
            thread.wait(timeout_ms)

    @pyqtSlot()
    def _on_close_clicked(self) -> None:
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.wait_for_jobs()
        super().closeEvent(event)

    def done(self, result: int) -> None:       # Esc: the same waiting as closing
        self.wait_for_jobs()
        super().done(result)


def _hbox(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row


def _row(*items) -> QWidget:
    """Widgets (or layouts) side by side, as one form field."""
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for item in items:
        if isinstance(item, QWidget):
            row.addWidget(item)
        else:
            row.addLayout(item)
    return holder
