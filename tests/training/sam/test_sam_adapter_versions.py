"""A LIT-LoRA adapter as a `sam_adapter` model version: registered with its base (CLI `sam
register`), listed/shown, activated without touching the active segmenter, refused by every
predictor path, exported and imported as a bundle, deleted, and loaded back for tracking
(`track --adapter VERSION`). SAM 2 tiny untrained at 128 px; the adapter is a real LitLora
save (the format an update writes) with non-zero LoRA tensors, not a trained one."""
from __future__ import annotations

import json

import pytest
import torch
from peft.utils import get_peft_model_state_dict

from src.cli import main as cli_main
from src.data.capture import capture_array
from src.data.datasets.retrain import active_models
from src.db import annotations as annotations_repo
from src.db import model_versions as repo
from src.db.classes import add_class
from src.db.records import Annotation, ModelFile, ModelVersion
from src.errors import ModelError
from src.training import trust
from src.training.inference.loading import find_version, load_predictor
from src.training.learning.adapters import AdapterMeta, AdapterStore
from src.training.models import ModelManager
from src.training.models.bundle import import_model
from src.training.models.export import export_version
from src.training.models.sam_adapter import (SAM_ADAPTER_TASK, SamBase, load_adapter_decoder,
                                             register_sam_adapter)
from src.training.sam.lit_lora import LitLora, LitLoraSettings, adapted_copy, decoder_targets
from src.training.sam.loading import load_engine
from tests.training.sam.conftest import TEST_IMGSZ, square_frame

FAST = ["--untrained", "--imgsz", str(TEST_IMGSZ)]
OBJECT = 7


@pytest.fixture
def engine(project):
    """The engine the CLI loads with FAST (load_engine keeps one per process)."""
    return load_engine(project, "sam2_t", image_size=TEST_IMGSZ, untrained=True)


def _save_adapter(project, engine, source_id: int, object_id: int = OBJECT,
                  base_ref: str | None = None) -> dict:
    """An adapter saved where LitLora keeps it, with LoRA B tensors made non-zero."""
    settings = LitLoraSettings()
    decoder = adapted_copy(engine.base_decoder, settings)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in decoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    meta = AdapterMeta.now(base_ref or engine.key, 0.71, "val_iou", samples=3, epochs=5, reason="patience")
    folder = LitLora.folder_for(project.root, source_id, object_id)
    AdapterStore(folder).save_model(decoder, settings, decoder_targets(engine.base_decoder), meta)
    return {k: v.clone() for k, v in get_peft_model_state_dict(decoder).items()}


def _cli(project, *args) -> int:
    return cli_main(["--project", str(project.root), *args])


def _register(project, source, capsys, *extra) -> dict:
    assert _cli(project, "sam", "register", source.name, "--object", str(OBJECT), "--json",
                *FAST, *extra) == 0
    return json.loads(capsys.readouterr().out)


def _segmenter(project, tmp_path) -> ModelVersion:
    """A registered, active `segment` version (its weights file is never loaded here)."""
    weights = tmp_path / "seg.pt"
    weights.write_bytes(b"segment weights")
    f = ModelFile(role="weights", path=str(weights), sha256=trust.sha256_file(weights),
                  size_bytes=weights.stat().st_size)
    return repo.add_model_version(project.conn, ModelVersion(
        task="segment", name="seg", version=0, path=str(weights), is_active=True,
        model_type="yolo"), [f])


def test_register_lists_with_kind_and_base_and_refuses_untrained_without_the_flag(
        project, square_source, engine, capsys):
    _save_adapter(project, engine, square_source.id)
    folder = LitLora.folder_for(project.root, square_source.id, OBJECT) / "adapter"
    learned = {"source": square_source.name, "source_id": square_source.id, "object_id": OBJECT}
    with pytest.raises(ModelError, match="untrained SAM"):     # no explicit flag: refused
        register_sam_adapter(ModelManager(project), folder,
                             SamBase.of(engine.weights, TEST_IMGSZ), learned)
    args = ("sam", "register", square_source.name, "--object", str(OBJECT), "--imgsz",
            str(TEST_IMGSZ))
    code = _cli(project, *args)            # without --untrained: the weights are looked up
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "sam2_t.pt" in err
    project.base_weights_dir.mkdir(parents=True, exist_ok=True)
    (project.base_weights_dir / "sam2_t.pt").write_bytes(b"other weights")
    code = _cli(project, *args)            # learned on the untrained model, not this file
    err = capsys.readouterr().err
    assert code == 2 and "learned on" in err and len(err.strip().splitlines()) == 1
    assert ModelManager(project).list(SAM_ADAPTER_TASK) == []

    out = _register(project, square_source, capsys, "--name", "square tracker")
    assert out["task"] == SAM_ADAPTER_TASK and out["display_name"] == "square tracker"
    assert out["metrics"]["val_iou"] == pytest.approx(0.71) and out["metrics"]["samples"] == 3
    assert out["base"]["task"] == "sam_base" and "untrained" in out["base"]["display_name"]
    assert _cli(project, "models", "list", "--task", SAM_ADAPTER_TASK, "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == out["id"] and listed["task"] == SAM_ADAPTER_TASK
    assert listed["trusted"] and not listed["active"]
    assert _cli(project, "models", "show", str(out["id"]), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lineage"][0]["display_name"] == "SAM base sam2_t (untrained)"
    assert {f["role"] for f in shown["files"]} == {"weights", "metadata",
                                                   "file/adapter_config.json"}
    meta = json.loads(open(next(f["path"] for f in shown["files"]
                                if f["role"] == "metadata")).read())
    assert meta["base"] == {"name": "sam2_t", "file": None, "sha256": None,
                            "image_size": TEST_IMGSZ}
    assert meta["learned_from"] == {"project": project.root.name, "source": square_source.name,
                                    "source_id": square_source.id, "object_id": OBJECT}
    # the same adapter twice: refused, one line
    code = _cli(project, "sam", "register", square_source.name, "--object", str(OBJECT), *FAST)
    err = capsys.readouterr().err
    assert code == 2 and f"already registered as version {out['id']}" in err
    # renamed like any version
    assert _cli(project, "models", "rename", str(out["id"]), "square v2") == 0
    assert ModelManager(project).get("square v2").id == out["id"]


def test_activating_an_adapter_never_changes_the_segmenter_and_predictors_refuse_it(
        project, square_source, engine, capsys, tmp_path):
    segmenter = _segmenter(project, tmp_path)
    _save_adapter(project, engine, square_source.id)
    adapter = _register(project, square_source, capsys)
    assert _cli(project, "models", "activate", str(adapter["id"])) == 0
    capsys.readouterr()
    mm = ModelManager(project)
    assert mm.active("segment").id == segmenter.id
    assert mm.active(SAM_ADAPTER_TASK).id == adapter["id"]
    assert find_version(project, "active").id == segmenter.id
    assert [m.id for m in active_models(project)] == [segmenter.id]
    with pytest.raises(ModelError, match="SAM adapter"):
        load_predictor(project, str(adapter["id"]))
    with pytest.raises(ModelError, match="bundle only"):
        export_version(mm, mm.get(adapter["id"]), "onnx")
    code = _cli(project, "predict", str(square_source.id), "--model", str(adapter["id"]))
    err = capsys.readouterr().err
    assert code == 2 and "SAM adapter" in err and len(err.strip().splitlines()) == 1
    code = _cli(project, "models", "compare", str(adapter["id"]), str(segmenter.id))
    assert code == 2 and "SAM adapter" in capsys.readouterr().err
    # and activating the segmenter again leaves the adapter active for its kind
    mm.activate(segmenter.id)
    assert mm.active(SAM_ADAPTER_TASK).id == adapter["id"]


def test_bundle_keeps_the_adapter_and_its_base_and_delete_removes_it(
        project, square_source, engine, capsys, tmp_path):
    saved = _save_adapter(project, engine, square_source.id)
    adapter = _register(project, square_source, capsys)
    mm = ModelManager(project)
    original = mm.get(adapter["id"])
    bundle = tmp_path / "adapter.zip"
    assert _cli(project, "models", "export", str(adapter["id"]), "--format", "bundle",
                "--out", str(bundle)) == 0
    capsys.readouterr()
    folder = mm.folder(original)
    assert _cli(project, "models", "delete", str(adapter["id"])) == 0
    capsys.readouterr()
    assert not folder.exists() and mm.list(SAM_ADAPTER_TASK) == []
    imported = import_model(mm, bundle)
    assert imported.task == SAM_ADAPTER_TASK and imported.lineage == original.lineage
    assert imported.metrics == original.metrics and mm.is_trusted(imported)
    version, decoder = load_adapter_decoder(mm, imported.id, engine)
    loaded = get_peft_model_state_dict(decoder)
    assert version.id == imported.id and loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert all(not p.requires_grad for n, p in decoder.named_parameters() if "lora_" not in n)
    assert not any("lora_" in n for n, _ in engine.base_decoder.named_parameters())


@pytest.mark.slow
def test_track_with_a_registered_adapter_version(project, square_source, engine, capsys):
    cls = add_class(project.conn, "square")
    frame = capture_array(project, square_source, 2, square_frame(2))
    ann = annotations_repo.add_annotation(project.conn, Annotation(
        frame.id, cls.id, "box", [14, 16, 38, 40]))
    _save_adapter(project, engine, square_source.id)
    adapter = _register(project, square_source, capsys)
    assert _cli(project, "models", "activate", str(adapter["id"])) == 0
    capsys.readouterr()
    assert _cli(project, "track", square_source.name, "--from-frame", "2", "--to-frame", "3",
                "--object", str(ann.id), "--adapter", "active:sam_adapter", "--json",
                *FAST) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adapter"]["version"] == adapter["id"] and [f["frame"] for f in
                                                          out["frames"]] == [3]
    code = _cli(project, "track", square_source.name, "--from-frame", "2", "--to-frame", "3",
                "--object", str(ann.id), "--adapter", "nope", *FAST)
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_an_adapter_is_not_loaded_onto_another_sam_base(project, square_source, engine, capsys,
                                                        tmp_path):
    from types import SimpleNamespace

    from src.training.sam.weights import SamWeights
    _save_adapter(project, engine, square_source.id)
    adapter = _register(project, square_source, capsys)
    other = tmp_path / "sam2_t.pt"
    other.write_bytes(b"trained weights")
    for weights in (SamWeights("sam2_t", other), SamWeights("mobile_sam", None)):
        fake = SimpleNamespace(weights=weights, image_size=TEST_IMGSZ)
        with pytest.raises(ModelError, match="was learned on sam2_t \\(untrained\\)"):
            load_adapter_decoder(ModelManager(project), adapter["id"], fake)
    with pytest.raises(ModelError, match="not a SAM adapter"):
        seg = _segmenter(project, tmp_path)
        load_adapter_decoder(ModelManager(project), seg.id, engine)


def test_an_adapter_learned_on_real_weights_records_their_sha256(project, square_source, engine,
                                                                 capsys):
    weights = project.base_weights_dir / "sam2_t.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"stand-in for sam2_t weights")      # never loaded: only hashed
    size = weights.stat().st_size
    args = ("sam", "register", square_source.name, "--object", str(OBJECT), "--imgsz", "128",
            "--json")
    _save_adapter(project, engine, square_source.id, base_ref=f"sam2_t-128-{size + 1}")
    assert _cli(project, *args) == 2 and "learned on" in capsys.readouterr().err
    _save_adapter(project, engine, square_source.id, base_ref=f"sam2_t-128-{size}")
    assert _cli(project, *args) == 0
    out = json.loads(capsys.readouterr().out)
    assert "untrained" not in out["display_name"] and "valIoU=0.710" in out["display_name"]
    assert out["base"]["weights_sha256"] == trust.sha256_file(weights)
    with pytest.raises(ModelError, match="the SAM model loaded is sam2_t \\(untrained\\)"):
        load_adapter_decoder(ModelManager(project), out["id"], engine)
