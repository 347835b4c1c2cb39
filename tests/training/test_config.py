"""Training configs: templates, overrides, validation with one message per problem."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from src.errors import ConfigError
from src.training.config import (TrainConfig, help_text, load_config, save_config,
                                 valid_keys)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = ("detection", "segmentation", "classification", "crop_classifier",
             "defect_classifier")


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_loads(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert isinstance(cfg, TrainConfig)
    assert cfg.model_type == ("timm" if "_classifier" in name else "yolo")
    assert cfg.task == {"detection": "detect", "segmentation": "segment"}.get(name, "classify")


def test_defect_template_turns_on_imbalance_handling():
    cfg = load_config(REPO / "configs" / "defect_classifier.yaml")
    assert (cfg.model, cfg.imbalance.focal_loss, cfg.imbalance.balanced_sampler) == \
        ("efficientnet_b0", True, True)
    assert load_config(REPO / "configs" / "crop_classifier.yaml").model == "resnet18"


def test_overrides_are_typed_and_nested():
    cfg = load_config(REPO / "configs" / "detection.yaml",
                      ["epochs=5", "lora.rank=4", "lora.enabled=true", "lr=3e-4",
                       "device=0,1", "imbalance.focal_alpha=0.25", "weights=null"])
    assert (cfg.epochs, cfg.lora.rank, cfg.lora.enabled, cfg.lr) == (5, 4, True, 3e-4)
    assert cfg.device == "0,1" and cfg.imbalance.focal_alpha == 0.25 and cfg.weights is None


def test_all_problems_reported_at_once_one_line_each():
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs" / "detection.yaml",
                    ["epoch=5", "batch=0", "lr=-1", "lora.rnk=3", "lora.dropout=1.5",
                     "imgsz=big", "device=gpu7"])
    lines = [ln for ln in str(err.value).splitlines() if ln.strip().startswith("- ")]
    assert len(lines) == 7
    text = str(err.value)
    assert "'epoch' is not a valid YOLO argument. Similar arguments are i.e. ['epochs" in text
    assert "unknown key 'lora.rnk'; did you mean 'lora.rank'?" in text
    assert "'batch' must be a positive integer, got 0" in text
    assert "'lr' must be > 0, got -1.0" in text
    assert "'lora.dropout' must be in [0, 1)" in text
    assert "'imgsz' must be an integer, got 'big'" in text
    assert "'device'" in text and "gpu7" in text


def test_unknown_key_in_yaml_file_gets_suggestion(tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "crop_classifier.yaml").read_text())
    raw["imbalance"]["focal_gama"] = 1.0
    raw["optimiser"] = "sgd"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "did you mean 'imbalance.focal_gamma'?" in str(err.value)
    assert "did you mean 'optimizer'?" in str(err.value)


def test_missing_weights_file_and_wrong_suffix(tmp_path):
    with pytest.raises(ConfigError, match="'weights' file not found: nope.pth"):
        load_config(REPO / "configs" / "crop_classifier.yaml", ["weights=nope.pth"])
    bad = tmp_path / "w.txt"
    bad.write_text("x")
    with pytest.raises(ConfigError, match=r"must be a \.pt/\.pth/\.safetensors file"):
        load_config(REPO / "configs" / "crop_classifier.yaml", [f"weights={bad}"])
    good = tmp_path / "w.pth"
    good.write_bytes(b"")
    assert load_config(REPO / "configs" / "crop_classifier.yaml",
                       [f"weights={good}"]).weights == str(good.resolve())


def test_weights_relative_to_config_folder(tmp_path):
    (tmp_path / "base.safetensors").write_bytes(b"")
    text = (REPO / "configs" / "crop_classifier.yaml").read_text()
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("weights: null", "weights: base.safetensors"))
    assert load_config(path).weights == str((tmp_path / "base.safetensors").resolve())


def test_required_fields_and_model_type_rules(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model_type": "timm", "task": "detect", "model": "resnet18"}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "'name' is required" in str(err.value)
    assert "timm models only classify" in str(err.value)


def test_registered_model_reference_syntax():
    cfg = load_config(REPO / "configs" / "detection.yaml", ["weights=model:3"])
    assert cfg.weights == "model:3"
    with pytest.raises(ConfigError, match="model:<version id>"):
        load_config(REPO / "configs" / "detection.yaml", ["weights=model:latest"])


def test_bad_regex_and_override_syntax():
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs" / "detection.yaml", ["lora.layers=regex:([", "epochs"])
    assert "invalid regex" in str(err.value) and "'epochs' is not key=value" in str(err.value)


def test_every_field_has_help():
    for key in valid_keys():
        assert help_text(key).strip(), key


@settings(max_examples=25, deadline=None)
@given(epochs=st.integers(1, 500), rank=st.integers(1, 64), lr=st.floats(1e-6, 1.0),
       gamma=st.floats(0, 5), alpha=st.one_of(st.none(), st.floats(0, 1)),
       lora=st.booleans())
def test_save_then_load_round_trips(tmp_path_factory, epochs, rank, lr, gamma, alpha, lora):
    cfg = load_config(REPO / "configs" / "defect_classifier.yaml",
                      [f"epochs={epochs}", f"lora.rank={rank}", f"lr={lr!r}",
                       f"imbalance.focal_gamma={gamma!r}", f"imbalance.focal_alpha={alpha!r}",
                       f"lora.enabled={str(lora).lower()}"])
    path = save_config(cfg, tmp_path_factory.mktemp("cfg") / "config.yaml")
    assert load_config(path) == cfg


# -- every `yolo train` argument ------------------------------------------------------------

def test_ultralytics_arguments_as_bare_overrides_and_in_the_yolo_section(tmp_path):
    cfg = load_config(REPO / "configs" / "detection.yaml",
                      ["cos_lr=true", "lrf=0.1", "warmup_epochs=0", "momentum=0.9",
                       "close_mosaic=2", "yolo.mosaic=0.5", "hsv_h=0.02", "fliplr=0",
                       "mask_ratio=2", "iou=0.6"])
    assert cfg.warmup_epochs == 0.0
    assert {k: cfg.yolo[k] for k in ("cos_lr", "lrf", "momentum", "close_mosaic", "mosaic",
                                     "hsv_h", "fliplr", "mask_ratio", "iou")} == {
        "cos_lr": True, "lrf": 0.1, "momentum": 0.9, "close_mosaic": 2, "mosaic": 0.5,
        "hsv_h": 0.02, "fliplr": 0, "mask_ratio": 2, "iou": 0.6}
    # the resolved config (config.yaml of a run) loads back to the same settings
    assert load_config(save_config(cfg, tmp_path / "config.yaml")) == cfg


def test_yolo_section_reaches_ultralytics_over_our_defaults(tmp_path):
    from src.training.yolo_trainer import ultralytics_overrides

    cfg = load_config(REPO / "configs" / "detection.yaml",
                      ["nbs=64", "plots=true", "cos_lr=true", "lr=0.02", "epochs=3"])
    args = ultralytics_overrides(cfg, tmp_path / "data.yaml", tmp_path, "cpu")
    assert (args["nbs"], args["plots"], args["cos_lr"]) == (64, True, True)
    assert (args["lr0"], args["epochs"], args["save_dir"]) == (0.02, 3, str(tmp_path))
    from ultralytics.cfg import get_cfg
    assert get_cfg(overrides=args).cos_lr is True   # ultralytics accepts the whole set


@pytest.mark.parametrize("override, expected", [
    ("momentm=0.9", "'momentm' is not a valid YOLO argument. Similar arguments are i.e. "
                    "['momentum=0.937'"),
    ("mosaic=2", "yolo.mosaic: 'mosaic=2' is an invalid value. Valid 'mosaic' values are "
                 "between 0.0 and 1.0."),
    ("cos_lr=maybe", "yolo.cos_lr: 'cos_lr=maybe' is of invalid type str"),
    ("lr0=0.1", "'lr0' cannot be set: the initial learning rate is 'lr' here"),
    ("yolo.epochs=3", "'yolo.epochs': set 'epochs' at the top level"),
    ("data=x.yaml", "'data' cannot be set: the dataset comes from --dataset"),
    ("tensorbord=false", "unknown key 'tensorbord'; did you mean 'tensorboard'?"),
])
def test_ultralytics_checks_the_yolo_arguments(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs" / "segmentation.yaml", [override])
    assert "\n" not in str(err.value) and expected in str(err.value)   # one problem, one line


def test_ultralytics_arguments_refused_for_timm_and_with_class_weights():
    with pytest.raises(ConfigError, match=r"ultralytics arguments \(momentum\) only apply to "
                                          r"model_type yolo"):
        load_config(REPO / "configs" / "crop_classifier.yaml", ["momentum=0.9"])
    with pytest.raises(ConfigError, match="keep one of them"):
        load_config(REPO / "configs" / "detection.yaml",
                    ["imbalance.class_weights=true", "cls_pw=0.5"])


def test_cli_reports_a_bad_yolo_argument_in_one_line_exit_2(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "main.py", "--project", str(tmp_path / "p"), "train",
                           "configs/detection.yaml", "--dataset", "x", "mosaic=7"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "'mosaic=7' is an invalid value" in proc.stderr
    assert "Traceback" not in proc.stderr
