"""timm classifiers: ONNX export (torch.onnx) runs in onnxruntime with the same logits, and
compare re-evaluates two versions on one classification split."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from src.cli import main as cli_main
from src.db import model_versions as repo
from src.db.records import ModelVersion
from src.training.models import ModelManager
from src.training.models.manager import scan_files
from tests.training.conftest import write_classify_dataset

NAMES = ["blue", "red"]


def register_timm(project, seed: int, task: str = "crop_classifier") -> ModelVersion:
    """A timm classifier saved the way the trainer saves it, registered as trained."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=len(NAMES))
    folder = project.models_dir / task / "views" / f"v{seed}"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))
    (folder / "model_config.json").write_text(json.dumps({
        "architecture": "test_resnet", "num_classes": len(NAMES), "class_names": NAMES,
        "imgsz": 32}))
    files = scan_files(project, folder)
    for f in files:
        repo.add_trusted(project.conn, f.sha256, "model", f.path)
    return repo.add_model_version(project.conn, ModelVersion(
        task=task, name="views", version=0, path=project.relpath(folder / "model.safetensors"),
        format="safetensors", model_type="timm", classes=NAMES), files)


@pytest.mark.slow
def test_timm_onnx_export_matches_pytorch_logits(project, tmp_path, capsys):
    import onnxruntime as ort

    from src.training.models.timm_model import load_timm_classifier

    version = register_timm(project, 1)
    out = tmp_path / "views.onnx"
    assert cli_main(["--project", str(project.root), "models", "export", str(version.id),
                     "--out", str(out)]) == 0
    model, _ = load_timm_classifier(ModelManager(project), version)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": x})       # a batch of 3: dynamic batch axis
    assert got.shape == (3, 2) and np.abs(got - expected).max() < 1e-4
    assert cli_main(["--project", str(project.root), "models", "export", str(version.id),
                     "--format", "torchscript"]) == 2
    assert "onnx or bundle" in capsys.readouterr().err


@pytest.mark.slow
def test_timm_compare_on_one_classification_split(project, tmp_path, capsys):
    a, b = register_timm(project, 1), register_timm(project, 2)
    data = write_classify_dataset(tmp_path / "crops", {"train": {"red": 2, "blue": 2},
                                                       "val": {"red": 3, "blue": 3}})
    assert cli_main(["--project", str(project.root), "models", "compare", str(a.id),
                     str(b.id), "--dataset", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [v["id"] for v in result["versions"]] == [a.id, b.id]
    for v in result["versions"]:
        assert v["images"] == 6 and v["ms_per_image"] > 0
        assert 0.0 <= v["metrics"]["balanced_accuracy"] <= 1.0
        assert set(v["per_class"]) == set(NAMES)
    assert cli_main(["--project", str(project.root), "models", "compare", str(a.id),
                     str(b.id), "--dataset", str(data)]) == 0
    table = capsys.readouterr().out
    assert "ms per image" in table and "per class: f1" in table and f"v{b.id}" in table
    other = write_classify_dataset(tmp_path / "colours", {"train": {"green": 2, "red": 2},
                                                          "val": {"green": 1, "red": 1}})
    assert cli_main(["--project", str(project.root), "models", "compare", str(a.id),
                     str(b.id), "--dataset", str(other)]) == 2
    assert "predicts classes" in capsys.readouterr().err
