"""Train model…: model type, base model, dataset version, hyperparameters with their help as
tooltips, LoRA, imbalance, device, advanced keys; validated as the CLI validates (the same
`load_config`), inline, with Start disabled until the config is valid."""
from __future__ import annotations

from pathlib import Path

import yaml
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                             QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout)

from src.errors import LabelLoopError
from src.gui.training.worker import REPO, TrainingRequest
from src.training.config import help_text, load_config

CONFIGS = REPO / "configs"
TEMPLATES = {  # what a user picks → the template behind it
    "Detection (YOLO)": "detection", "Segmentation (YOLO)": "segmentation",
    "Classification (YOLO)": "classification", "Crop 'view' classifier (timm ResNet-18)":
        "crop_classifier", "Defect classifier (timm EfficientNet-B0)": "defect_classifier"}
DATASET_TASKS = {"detect": ("detect",), "segment": ("segment",), "classify": ("classify", "crops")}


class TrainDialog(QDialog):
    train_requested = pyqtSignal(object)          # TrainingRequest

    def __init__(self, project_root: Path, datasets: list, versions: list, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("trainDialog")
        self.setWindowTitle("Train model")
        self.project_root = Path(project_root)
        self.datasets, self.versions = datasets, versions
        self._build()
        self._on_template_changed()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.template = QComboBox(objectName="templateCombo")
        self.template.addItems(TEMPLATES)
        self.dataset = QComboBox(objectName="datasetCombo")
        self.base = QComboBox(objectName="baseCombo")
        self.base_note = QLabel(wordWrap=True, objectName="baseNote")
        self.base_note.setMinimumHeight(self.base_note.fontMetrics().lineSpacing() * 2 + 6)
        self.epochs = self._spin("epochs", QSpinBox(minimum=1, maximum=10000))
        self.batch = self._spin("batch", QSpinBox(minimum=1, maximum=4096))
        self.imgsz = self._spin("imgsz", QSpinBox(minimum=16, maximum=8192, singleStep=32))
        self.lr = self._spin("lr", QDoubleSpinBox(decimals=6, minimum=0.0, maximum=10.0,
                                                   singleStep=0.001))
        self.patience = self._spin("patience", QSpinBox(minimum=0, maximum=10000))
        self.device = QComboBox(objectName="deviceCombo")
        from src.training.device import available_devices  # torch: only when the dialog opens
        self.device.addItems(available_devices())
        self.device.setToolTip(help_text("device"))
        form = QFormLayout()
        for label, widget in (("Model type", self.template), ("Dataset", self.dataset),
                              ("Base model", self.base), ("", self.base_note),
                              ("Epochs", self.epochs), ("Batch", self.batch),
                              ("Image size", self.imgsz), ("Learning rate", self.lr),
                              ("Patience", self.patience), ("Device", self.device)):
            form.addRow(label, widget)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._lora_box())
        layout.addWidget(self._imbalance_box())
        layout.addWidget(QLabel("Advanced keys (one key=value per line, e.g. cos_lr=true):"))
        self.advanced = QPlainTextEdit(objectName="advancedKeys")
        self.advanced.setMaximumHeight(70)
        layout.addWidget(self.advanced)
        self.problem = QLabel(wordWrap=True, objectName="configProblem")
        self.problem.setStyleSheet("color: #b00020")
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = QPushButton("Start training", objectName="startTrainingButton")
        self.buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_start_clicked)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.template.currentIndexChanged.connect(lambda _i: self._on_template_changed())
        for widget in (self.dataset, self.base, self.device):
            widget.currentIndexChanged.connect(lambda _i: self.validate())
        self.advanced.textChanged.connect(self.validate)

    def _spin(self, key: str, spin):
        spin.setToolTip(help_text(key))
        spin.setObjectName(f"{key}Spin")
        spin.valueChanged.connect(lambda _v: self.validate())
        return spin

    def _lora_box(self) -> QGroupBox:
        box = QGroupBox("LoRA adapters (train small adapters, keep the base frozen)",
                        objectName="loraGroup", checkable=True, checked=False)
        box.setToolTip(help_text("lora.enabled"))
        self.lora_rank = self._spin("lora.rank", QSpinBox(minimum=1, maximum=256))
        self.lora_alpha = self._spin("lora.alpha", QDoubleSpinBox(minimum=0.1, maximum=1024))
        self.lora_dropout = self._spin("lora.dropout", QDoubleSpinBox(
            minimum=0.0, maximum=0.99, singleStep=0.05))
        self.lora_layers = QComboBox(objectName="loraLayers", editable=True)
        self.lora_layers.addItems(["all", "neck+head", "head"])
        self.lora_layers.setToolTip(help_text("lora.layers"))
        self.lora_layers.currentTextChanged.connect(lambda _t: self.validate())
        box.toggled.connect(lambda _on: self.validate())
        form = QFormLayout(box)
        for label, widget in (("Rank", self.lora_rank), ("Alpha", self.lora_alpha),
                              ("Dropout", self.lora_dropout), ("Layers", self.lora_layers)):
            form.addRow(label, widget)
        self.lora = box
        return box

    def _imbalance_box(self) -> QGroupBox:
        box = QGroupBox("Class imbalance (timm classifiers)", objectName="imbalanceGroup")
        row = QHBoxLayout(box)
        self.imbalance = {}
        for key, text in (("class_weights", "class weights"), ("focal_loss", "focal loss"),
                          ("balanced_sampler", "balanced sampler")):
            check = QCheckBox(text, objectName=f"{key}Check")
            check.setToolTip(help_text(f"imbalance.{key}"))
            check.toggled.connect(lambda _on: self.validate())
            row.addWidget(check)
            self.imbalance[key] = check
        self.imbalance_box = box
        return box

    # -- state ---------------------------------------------------------------------------
    @property
    def template_path(self) -> Path:
        return CONFIGS / f"{TEMPLATES[self.template.currentText()]}.yaml"

    def _on_template_changed(self) -> None:
        raw = yaml.safe_load(self.template_path.read_text(encoding="utf-8"))
        widgets = [self.epochs, self.batch, self.imgsz, self.lr, self.patience]
        for widget in widgets:
            widget.blockSignals(True)
        self.epochs.setValue(int(raw.get("epochs", 50)))
        self.batch.setValue(int(raw.get("batch", 16)))
        self.imgsz.setValue(int(raw.get("imgsz", 640)))
        self.lr.setValue(float(raw.get("lr", 0.001)))
        self.patience.setValue(int(raw.get("patience", 20)))
        lora = raw.get("lora") or {}
        self.lora_rank.setValue(int(lora.get("rank", 8)))
        self.lora_alpha.setValue(float(lora.get("alpha", 16.0)))
        self.lora_dropout.setValue(float(lora.get("dropout", 0.0)))
        for widget in widgets:
            widget.blockSignals(False)
        self.imbalance_box.setEnabled(raw.get("model_type") == "timm")
        self._fill_datasets(raw.get("task", "detect"))
        self._fill_bases(raw)
        self.validate()

    def use_settings(self, config: dict) -> None:
        """Start from an earlier run's settings (retrain): the fields this dialog shows."""
        spins = {"epochs": (self.epochs, int), "batch": (self.batch, int),
                 "imgsz": (self.imgsz, int), "lr": (self.lr, float),
                 "patience": (self.patience, int)}
        for key, (spin, kind) in spins.items():
            if isinstance(config.get(key), (int, float)):
                spin.setValue(kind(config[key]))
        lora = config.get("lora") or {}
        if lora:
            self.lora.setChecked(bool(lora.get("enabled")))
            self.lora_rank.setValue(int(lora.get("rank", self.lora_rank.value())))
            self.lora_alpha.setValue(float(lora.get("alpha", self.lora_alpha.value())))
            self.lora_dropout.setValue(float(lora.get("dropout", self.lora_dropout.value())))
            if self.lora_layers.findText(str(lora.get("layers"))) >= 0:
                self.lora_layers.setCurrentText(str(lora["layers"]))
        imbalance = config.get("imbalance") or {}
        for key, check in self.imbalance.items():
            if key in imbalance:
                check.setChecked(bool(imbalance[key]))
        self.validate()

    def _fill_datasets(self, task: str) -> None:
        self.dataset.blockSignals(True)
        self.dataset.clear()
        for ds in self.datasets:
            if ds.task in DATASET_TASKS.get(task, ()):
                self.dataset.addItem(f"{ds.name}:v{ds.version}  ({ds.task})", f"{ds.name}:v{ds.version}")
        self.dataset.blockSignals(False)

    def _fill_bases(self, raw: dict) -> None:
        self.base.blockSignals(True)
        self.base.clear()
        task = raw.get("task", "detect")
        name = raw.get("model", "")
        local = [p for p in (REPO / "models" / "base").glob(f"{Path(name).stem}*")
                 if p.suffix in (".pt", ".pth", ".safetensors")]
        self.base.addItem("default: local weights in models/base/, else download, else from "
                          "scratch", None)
        for version in self.versions:
            if version.task == task:
                self.base.addItem(f"registered: {version.name} v{version.version} "
                                  f"(model:{version.id})", f"model:{version.id}")
        self.base.blockSignals(False)
        self.base_note.setText(
            f"Offline: {', '.join(p.name for p in local)} found in models/base/ (pretrained)."
            if local else f"Offline, no {name} weights in models/base/: the default builds the "
                          f"model from its architecture and trains from scratch.")

    def overrides(self) -> list[str]:
        values = [f"epochs={self.epochs.value()}", f"batch={self.batch.value()}",
                  f"imgsz={self.imgsz.value()}", f"lr={self.lr.value():g}",
                  f"patience={self.patience.value()}", f"device={self.device.currentText()}"]
        if self.base.currentData():
            values.append(f"weights={self.base.currentData()}")
        if self.lora.isChecked():
            values += ["lora.enabled=true", f"lora.rank={self.lora_rank.value()}",
                       f"lora.alpha={self.lora_alpha.value():g}",
                       f"lora.dropout={self.lora_dropout.value():g}",
                       f"lora.layers={self.lora_layers.currentText()}"]
        if self.imbalance_box.isEnabled():
            values += [f"imbalance.{k}={'true' if c.isChecked() else 'false'}"
                       for k, c in self.imbalance.items()]
        values += [line.strip() for line in self.advanced.toPlainText().splitlines()
                   if line.strip()]
        return values

    def validate(self) -> bool:
        problem = None
        if self.dataset.currentData() is None:
            problem = ("no dataset of this task in the project yet: build one first with "
                       "`python main.py dataset build NAME --task ...`")
        else:
            try:
                load_config(self.template_path, self.overrides())
            except LabelLoopError as exc:
                problem = str(exc)
        self.problem.setText(problem or "")
        self.start_button.setEnabled(problem is None)
        return problem is None

    def request(self) -> TrainingRequest:
        return TrainingRequest(self.project_root, self.template_path,
                               self.dataset.currentData(), self.overrides())

    def _on_start_clicked(self) -> None:
        if self.validate():
            self.train_requested.emit(self.request())
            self.accept()

