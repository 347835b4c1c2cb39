"""Every template in configs/ trains for real, at tiny size, through the one trainer contract.

YOLO detect, segment and classify (yolov8n from yaml), the ResNet-18 crop classifier and the
EfficientNet-B0 defect classifier: one epoch at 32 px on a dozen images each, through
`create_trainer(cfg).train(...)`, with the same typed events from both trainers, and the
report/metadata fixes checked on real outcomes.
"""
from __future__ import annotations

import pytest

from src.training.control import RunControl
from src.training.events import PAYLOADS, EventBus
from src.training.reporting import build_metadata, build_report, report_markdown
from src.training.trainers import TimmTrainer, YoloTrainer, create_trainer

pytestmark = pytest.mark.slow

TEMPLATES = {   # template -> (dataset fixture, trainer class)
    "detection": ("detect_dataset", YoloTrainer),
    "segmentation": ("segment_dataset", YoloTrainer),
    "classification": ("classify_dataset", YoloTrainer),
    "crop_classifier": ("binary_dataset", TimmTrainer),
    "defect_classifier": ("classify_dataset", TimmTrainer),
}
EVERY_RUN = ["on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
             "on_train_batch_start", "on_train_batch_end", "on_train_epoch_end",
             "on_fit_epoch_end", "on_model_save", "on_train_end"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_trains_through_the_trainer_contract(template, make_cfg, request, tmp_path):
    fixture, trainer_class = TEMPLATES[template]
    data = request.getfixturevalue(fixture)
    cfg = make_cfg(template, "tensorboard=false", "imbalance.focal_loss=true")
    trainer = create_trainer(cfg)
    assert type(trainer) is trainer_class
    events = []
    bus = EventBus()
    bus.on("*", lambda name, payload: events.append((name, payload)))

    outcome = trainer.train(data, tmp_path / "run", bus, RunControl(), base_dir=tmp_path)

    assert outcome.status == "completed" and outcome.epochs_done == 1
    assert outcome.merged_model.is_file()
    names = [name for name, _ in events]
    assert [n for n in EVERY_RUN if n not in names] == []
    assert all(type(p) is PAYLOADS[name] for name, p in events)
    # one order for both trainers: the epoch's record, then its checkpoint
    assert names[names.index("on_fit_epoch_end") + 1] == "on_model_save"
    end = events[-1][1]
    assert (events[-1][0], end.status, end.epoch) == ("on_train_end", "completed", 0)
    _check_outputs(cfg, outcome)


def _check_outputs(cfg, outcome) -> None:
    dataset = {"name": "tiny", "version": 1}
    meta = build_metadata(run_id=1, cfg=cfg, dataset=dataset, outcome=outcome, timings={},
                          device="cpu")
    report = build_report(run_id=1, cfg=cfg, dataset=dataset, outcome=outcome)
    assert "background" not in meta["classes"]                  # it is no class of the model
    assert meta["classes"] == list(outcome.per_class)
    labels = report["confusion_labels"]
    if cfg.task in ("detect", "segment") and report["confusion_matrix"]:
        assert labels == [*meta["classes"], "background"]      # the matrix's extra row
        assert len(report["confusion_matrix"]) == len(labels)
    text = report_markdown(report)
    if cfg.model_type == "yolo":
        # YOLO trains with ultralytics' own losses: nothing says cross-entropy or focal loss
        assert "cross-entropy" not in text
        assert "- ignored: focal loss: not supported by the YOLO trainer" in text
        assert not any("focal" in note for note in report["imbalance"]["applied"])
    else:
        assert "focal loss" in report["imbalance"]["applied"][0]
        assert report["imbalance"]["ignored"] == []
