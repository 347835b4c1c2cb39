"""Every ultralytics internal the YOLO trainer overrides or calls, pinned to what it relies on.

src/training/yolo_trainer.py subclasses ultralytics' task trainers and patches a validator.
When an ultralytics upgrade renames a hooked method, changes its parameters, or drops the
behaviour the hook relies on, a test here fails and says which hook to re-check — instead of
a training that silently trains the wrong weights or crashes mid-run.
"""
from __future__ import annotations

import importlib
import inspect

import pytest

from src.training import yolo_trainer

# (module, class, method) -> (parameter names, what our code relies on, source fragments)
HOOKS = {
    ("ultralytics.engine.trainer", "BaseTrainer", "get_model"): (
        ["self", "cfg", "weights", "verbose"],
        "_LabelLoopTrainer.get_model injects LoRA adapters into the model ultralytics builds",
        []),
    ("ultralytics.engine.trainer", "BaseTrainer", "_setup_train"): (
        ["self"],
        "_LabelLoopTrainer._setup_train re-freezes the base after ultralytics' freeze loop "
        "(which sets requires_grad on every tensor); _RepeatFactorSampling sets its epoch",
        ["requires_grad", "self.start_epoch", "resume_training"]),
    ("ultralytics.engine.trainer", "BaseTrainer", "get_validator"): (
        ["self"], "_LabelLoopTrainer.get_validator patches the detection validator", []),
    ("ultralytics.engine.trainer", "BaseTrainer", "_model_train"): (
        ["self"],
        "_LabelLoopTrainer._model_train puts frozen BatchNorm layers back in eval mode",
        ["self.model.train()"]),
    ("ultralytics.engine.trainer", "BaseTrainer", "save_model"): (
        ["self"],
        "_LabelLoopTrainer.save_model points self.last/self.best at temp files and renames "
        "them (atomic checkpoints)",
        ["self.last.write_bytes", "self.best.write_bytes", "self.best_fitness == self.fitness"]),
    ("ultralytics.engine.trainer", "BaseTrainer", "resume_training"): (
        ["self", "ckpt"],
        "_LabelLoopTrainer.resume_training replaces it (resume from a stop in epoch 0)",
        ['ckpt.get("epoch", -1) + 1', "_load_checkpoint_state", "self.start_epoch"]),
    ("ultralytics.engine.trainer", "BaseTrainer", "_load_checkpoint_state"): (
        ["self", "ckpt"], "_LabelLoopTrainer.resume_training calls it", []),
    ("ultralytics.engine.trainer", "BaseTrainer", "final_eval"): (
        ["self"],
        "_LabelLoopTrainer.final_eval merges the adapters into best.pt before ultralytics "
        "fuses and validates it",
        ["self.best", "self.validator(model="]),
    ("ultralytics.engine.trainer", "BaseTrainer", "validate"): (
        ["self"],
        "_TopOneFitness.validate replaces it for classify (best checkpoint by top-1)",
        ["self.validator(self)", "return metrics, fitness"]),
    ("ultralytics.engine.trainer", "BaseTrainer", "label_loss_items"): (
        ["self", "loss_items", "prefix"], "_losses() names the loss values of the events", []),
    ("ultralytics.models.yolo.detect", "DetectionTrainer", "get_dataloader"): (
        ["self", "dataset_path", "batch_size", "rank", "mode"],
        "_RepeatFactorSampling.get_dataloader replaces the train loader's sampler", []),
    ("ultralytics.models.yolo.classify", "ClassificationTrainer", "get_dataloader"): (
        ["self", "dataset_path", "batch_size", "rank", "mode"],
        "_RepeatFactorSampling.get_dataloader replaces the train loader's sampler", []),
    ("ultralytics.models.yolo.detect", "DetectionValidator", "update_metrics"): (
        ["self", "preds", "batch"],
        "_count_confusion_without_plots wraps it to fill the confusion matrix every epoch",
        ["self.confusion_matrix.process_batch", "self.args.plots"]),
    ("ultralytics.models.yolo.detect", "DetectionValidator", "_prepare_pred"): (
        ["self", "pred"], "_count_confusion_without_plots calls it", []),
    ("ultralytics.models.yolo.detect", "DetectionValidator", "_prepare_batch"): (
        ["self", "si", "batch"], "_count_confusion_without_plots/_detection_samples call it",
        []),
    ("ultralytics.models.yolo.segment", "SegmentationValidator", "_prepare_batch"): (
        ["self", "si", "batch"], "_count_confusion_without_plots calls it for segment", []),
    ("ultralytics.utils.metrics", "ConfusionMatrix", "process_batch"): (
        ["self", "detections", "batch", "conf", "iou_thres"],
        "_count_confusion_without_plots calls it with conf=", []),
}


def _method(module: str, cls: str, name: str):
    owner = getattr(importlib.import_module(module), cls)
    return getattr(owner, name, None)


@pytest.mark.parametrize("key", list(HOOKS), ids=lambda k: f"{k[1]}.{k[2]}")
def test_hooked_ultralytics_method_is_as_our_override_expects(key):
    import ultralytics

    module, cls, name = key
    params, reliance, fragments = HOOKS[key]
    where = (f"ultralytics {ultralytics.__version__} changed {cls}.{name}: {reliance} "
             f"(src/training/yolo_trainer.py). Check that hook against the new source, "
             f"then update this table.")
    method = _method(module, cls, name)
    assert method is not None, f"{where} — the method is gone"
    assert list(inspect.signature(method).parameters) == params, \
        f"{where} — parameters are now {list(inspect.signature(method).parameters)}"
    source = inspect.getsource(method)
    missing = [f for f in fragments if f not in source]
    assert not missing, f"{where} — its source no longer contains {missing}"


def test_every_override_of_the_yolo_trainer_is_pinned_here():
    """A new override in yolo_trainer.py needs its row in HOOKS."""
    pinned = {name for (_m, _c, name) in HOOKS}
    for mixin in (yolo_trainer._LabelLoopTrainer, yolo_trainer._TopOneFitness,
                  getattr(yolo_trainer, "_RepeatFactorSampling", object)):
        overrides = {name for name, value in vars(mixin).items()
                     if inspect.isfunction(value) and not name.startswith("__")}
        ours = {"_add_adapters", "save_interrupted", "_export_adapters"}   # not ultralytics'
        assert overrides - ours <= pinned, \
            f"{mixin.__name__} overrides {sorted(overrides - ours - pinned)} with no test " \
            f"pinning the ultralytics method it hooks: add it to HOOKS"


def test_checkpoint_attributes_our_interrupt_checkpoint_reads_still_exist():
    """save_interrupted writes what ultralytics' own checkpoint holds, from these attributes."""
    from ultralytics.engine.trainer import BaseTrainer

    source = inspect.getsource(BaseTrainer)
    for attribute in ("self.stopper.best_fitness", "self.stopper.best_epoch",
                      "self.ema.updates", "self.scaler", "self.wdir", "self.epoch_time",
                      "self.tloss"):
        assert attribute in source, f"BaseTrainer no longer has {attribute}: " \
                                    f"_LabelLoopTrainer.save_interrupted / the event bridge " \
                                    f"read it"
