"""A registered timm classifier rebuilt from its verified files (no pickle involved)."""
from __future__ import annotations

import json

from src.db.records import ModelVersion
from src.errors import ModelError
from src.training.models.manager import ModelManager


def load_timm_classifier(manager: ModelManager, version: ModelVersion):
    """(model in eval mode on CPU, model_config.json as a dict): timm.create_model +
    safetensors, as the trainer's model_config.json says."""
    import timm
    from safetensors.torch import load_file

    files = manager.verified_files(version)
    if "model_config" not in files or files["weights"].suffix != ".safetensors":
        raise ModelError(f"version {version.id} is not a timm classifier (no "
                         f"model_config.json + model.safetensors)", path=version.path)
    config = json.loads(files["model_config"].read_text())
    model = timm.create_model(config["architecture"], pretrained=False,
                              num_classes=int(config["num_classes"]))
    model.load_state_dict(load_file(str(files["weights"])))
    return model.eval(), config
