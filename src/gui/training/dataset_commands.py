"""Training › Build dataset… and Retrain active model with new data…: open the dataset dialog
(with the gallery's selection and filter as frame choices), and hand a built dataset to the
train dialog with it (and, for a retrain, the active model as base weights) preselected."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, pyqtSlot
from PyQt6.QtWidgets import QInputDialog, QMessageBox

from src.data.datasets.naming import parse_ref
from src.data.datasets.retrain import RetrainPlan, active_models, retrain_plan
from src.db import datasets as datasets_repo
from src.db import frames as frames_repo
from src.gui import dialogs
from src.gui.guard import reports_errors
from src.gui.training.dataset_dialog import DatasetDialog, FrameChoice
from src.gui.training.train_dialog import TEMPLATES, TrainDialog

if TYPE_CHECKING:
    from src.gui.main_window import MainWindow

# Which training template fits a dataset task, and a model version's (task, model type).
_TEMPLATE_OF_DATASET = {"detect": "detection", "segment": "segmentation",
                        "classify": "classification", "crops": "crop_classifier"}
_TEMPLATE_OF_MODEL = {("detect", "yolo"): "detection", ("segment", "yolo"): "segmentation",
                      ("classify", "yolo"): "classification",
                      ("classify", "timm"): "defect_classifier",
                      ("crop_classifier", "timm"): "crop_classifier"}
NO_ACTIVE_MODEL = ("There is no active model to retrain. Train one (Training › Train model…); "
                   "a finished training becomes its task's active model when the task has none, "
                   "or press \"Set active\" in its training window.")


class DatasetCommands(QObject):
    def __init__(self, window: "MainWindow", open_train_dialog) -> None:
        super().__init__(window)
        self.window = window
        self.open_train_dialog = open_train_dialog    # () -> TrainDialog | None
        self.dialog: DatasetDialog | None = None
        self._template: str | None = None              # the retrained model's template
        self._settings: dict = {}                      # ... and its run's settings

    # ---- build dataset -----------------------------------------------------------------
    def build_dataset(self) -> DatasetDialog | None:
        if self.window.session is None:
            return None
        self.close_dialog()
        frame = self.window.annotator.frame
        self.dialog = DatasetDialog(self.window.session, self._frame_choices(),
                                    prefer_frame=frame.id if frame else None, parent=self.window)
        self.dialog.train_requested.connect(self._on_dialog_train_requested)
        self.dialog.show()
        return self.dialog

    def _frame_choices(self) -> list[FrameChoice]:
        choices = [FrameChoice("All frames", None)]
        gallery = self.window.gallery
        if gallery.model is None:
            return choices
        selected = [f.id for f in gallery.selected_frames()]
        if selected:
            choices.append(FrameChoice(f"Gallery selection ({len(selected)} frames)", selected))
        model = gallery.model
        if model.class_filter is not None or model.unannotated_only:
            ids = [s.frame.id for s in frames_repo.list_frame_summaries(
                self.window.session.conn, class_id=model.class_filter,
                unannotated_only=model.unannotated_only)]
            label = gallery.filter_combo.currentText()
            choices.append(FrameChoice(f"Gallery filter: {label}", ids or [-1]))
        return choices

    @pyqtSlot(str, object)
    def _on_dialog_train_requested(self, ref: str, base) -> None:
        dialog = self.open_train_dialog()
        if dialog is not None:
            task = ref_task(self.window, ref)
            preselect(dialog, ref, base, self._template or _TEMPLATE_OF_DATASET.get(task))
            if self._settings:
                dialog.use_settings(self._settings)

    # ---- retrain -----------------------------------------------------------------------
    @reports_errors
    def retrain(self) -> DatasetDialog | None:
        session = self.window.session
        if session is None:
            return None
        models = active_models(session.project)
        if not models:
            QMessageBox.information(self.window, "Retrain active model", NO_ACTIVE_MODEL)
            return None
        model = models[0] if len(models) == 1 else self._ask_model(models)
        if model is None:
            return None
        plan = retrain_plan(session.project, model)
        if not dialogs.confirm(self.window, "Retrain active model", _describe(plan)):
            return None
        dialog = self.build_dataset()
        self._template = _TEMPLATE_OF_MODEL.get((model.task, model.model_type))
        self._settings = plan.settings
        dialog.use_fixed_spec(plan.spec, plan.base_weights, _describe(plan, short=True))
        dialog.start_build()
        return dialog

    def _ask_model(self, models):
        labels = [f"{m.task}: {m.display_name or m.name}" for m in models]
        label, ok = QInputDialog.getItem(self.window, "Retrain active model",
                                         "Several tasks have an active model. Retrain:",
                                         labels, 0, False)
        return models[labels.index(label)] if ok and label in labels else None

    def close_dialog(self) -> None:
        """Close the dataset dialog (waiting for its jobs: a build is atomic)."""
        self._template, self._settings = None, {}
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None


def _describe(plan: RetrainPlan, short: bool = False) -> str:
    ds, model = plan.dataset, plan.model
    text = (f"Retraining {model.display_name or model.name}: building the next version of "
            f"'{ds.name}' with the settings of {ds.name}:v{ds.version}, the version it was "
            f"trained on ({plan.labelled_since} frame(s) labelled since then are included); "
            f"then the training dialog opens with this model as base weights"
            + (f" and the settings of run {plan.run_id} (epochs, image size, batch, learning "
               f"rate, patience, LoRA)." if plan.settings else "."))
    return text if short else text + "\n\nBuild it now?"


def ref_task(window, ref: str) -> str | None:
    name, version = parse_ref(ref)
    record = datasets_repo.get_dataset(window.session.conn, name, version)
    return record.task if record else None


def preselect(dialog: TrainDialog, ref: str, base: str | None, template: str | None) -> None:
    """Choose the template, dataset and base weights in an open train dialog."""
    label = next((k for k, v in TEMPLATES.items() if v == template), None)
    if label is not None:
        dialog.template.setCurrentText(label)
    for combo, value in ((dialog.dataset, ref), (dialog.base, base)):
        index = combo.findData(value) if value is not None else -1
        if index >= 0:
            combo.setCurrentIndex(index)
    dialog.validate()

