"""One predictor contract for every model LabelLoop trains (create_predictor, like timm's
create_model): YOLO detect/segment/classify through ultralytics, timm classifiers from
their safetensors + model_config.json.

A predictor takes a batch of BGR uint8 images (as src/data/video.py decodes them) and
returns one `Prediction` per image in original-image pixels. A registered version is
loaded only through the model manager's verification (sha256 of every file, trust of
pickles); see src/training/inference/loading.py for resolving what a user names.
"""
from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from src.db.records import ModelVersion
from src.errors import ModelError
from src.training.inference.results import ClassScore, Detection, Prediction, bounding_box

YOLO_TASKS = ("detect", "segment", "classify")
TOP_K = 5


class Predictor(ABC):
    """Batched inference of one loaded model."""
    task: str                      # 'detect' | 'segment' | 'classify'
    names: list[str]               # class names in the model's class-id order
    model_name: str

    def __init__(self, *, conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None,
                 device: str = "cpu", batch: int = 8) -> None:
        check_thresholds(conf, iou)
        self.conf, self.iou, self.imgsz, self.device = conf, iou, imgsz, device
        self.batch = max(1, int(batch))

    @abstractmethod
    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        """One Prediction per BGR image, in the same order."""

    def predict_one(self, image: np.ndarray) -> Prediction:
        return self.predict([image])[0]


def check_thresholds(conf: float, iou: float) -> None:
    for name, value in (("conf", conf), ("iou", iou)):
        if not 0.0 <= float(value) <= 1.0:
            raise ModelError(f"{name} must be between 0 and 1, got {value}", field=f"--{name}",
                             hint="e.g. --conf 0.25 --iou 0.7")


class YoloPredictor(Predictor):
    """ultralytics YOLO: what `model.predict` finds, turned into Detections/ClassScores."""

    def __init__(self, weights: Path, *, model_name: str = "", task: str | None = None,
                 **options) -> None:
        super().__init__(**options)
        from ultralytics import YOLO

        from src.training import trust
        trust.check_before_unpickle(weights)
        self.model = YOLO(str(weights), task=task)
        if self.model.task not in YOLO_TASKS:
            raise ModelError(f"YOLO task {self.model.task!r} is not supported", path=weights,
                             hint=f"LabelLoop predicts {', '.join(YOLO_TASKS)}")
        self.task = self.model.task
        names = self.model.names
        self.names = [str(names[i]) for i in sorted(names)]
        self.model_name = model_name or Path(weights).parent.name

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        if not images:
            return []
        kwargs = {"conf": self.conf, "iou": self.iou, "device": self.device,
                  "verbose": False, "batch": self.batch}
        if self.imgsz:
            kwargs["imgsz"] = self.imgsz
        t0 = time.perf_counter()
        results = self.model.predict(list(images), **kwargs)
        share = (time.perf_counter() - t0) * 1000 / len(images)
        return [self._convert(r, share) for r in results]

    def _convert(self, result, ms: float) -> Prediction:
        h, w = result.orig_shape
        pred = Prediction(width=int(w), height=int(h), task=self.task, inference_ms=ms)
        if self.task == "classify":
            probs = result.probs
            pred.classes = [ClassScore(int(i), self.names[int(i)], float(c)) for i, c in
                            zip(probs.top5[:TOP_K], probs.top5conf.tolist()[:TOP_K])]
            return pred
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return pred
        xyxy = boxes.xyxy.cpu().numpy().tolist()
        conf = boxes.conf.cpu().numpy().tolist()
        cls = boxes.cls.cpu().numpy().astype(int).tolist()
        polygons = result.masks.xy if (self.task == "segment" and result.masks is not None) \
            else [None] * len(xyxy)
        for box, c, k, poly in zip(xyxy, conf, cls, polygons):
            pred.detections.append(_detection(box, c, k, self.names[k], poly))
        return pred


def _detection(box, conf, cls, name, poly) -> Detection:
    if poly is not None and len(poly) >= 3:
        points = [[float(x), float(y)] for x, y in poly]
        return Detection("polygon", cls, name, float(conf), bounding_box(points), points)
    return Detection("box", cls, name, float(conf), [float(v) for v in box])


class TimmClassifier(Predictor):
    """A timm classifier saved by src/training/timm_trainer.py (safetensors: no pickle)."""

    task = "classify"

    def __init__(self, weights: Path, *, model_name: str = "", **options) -> None:
        super().__init__(**options)
        import timm
        import torch
        from safetensors.torch import load_file
        config = _timm_config(Path(weights))
        self.names = [str(n) for n in config["class_names"]]
        self.imgsz = int(self.imgsz or config.get("imgsz") or 224)
        self.model = timm.create_model(config["architecture"], pretrained=False,
                                       num_classes=len(self.names))
        self.model.load_state_dict(load_file(str(weights)))
        self.model.eval().to(self.device)
        self.mean = torch.tensor(config.get("mean", (0.485, 0.456, 0.406)))[:, None, None]
        self.std = torch.tensor(config.get("std", (0.229, 0.224, 0.225)))[:, None, None]
        self.model_name = model_name or Path(weights).parent.name

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        import torch
        out: list[Prediction] = []
        for start in range(0, len(images), self.batch):
            chunk = images[start:start + self.batch]
            t0 = time.perf_counter()
            with torch.inference_mode():
                batch = torch.stack([self._tensor(im) for im in chunk]).to(self.device)
                probs = self.model(batch).softmax(dim=1).cpu().numpy()
            ms = (time.perf_counter() - t0) * 1000 / len(chunk)
            out += [self._prediction(im, p, ms) for im, p in zip(chunk, probs)]
        return out

    def _tensor(self, image: np.ndarray):
        """As the trainer loads images: RGB, PIL bilinear resize, ImageNet normalisation."""
        import torch
        from PIL import Image
        rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        array = np.asarray(rgb.resize((self.imgsz, self.imgsz), Image.BILINEAR),
                           dtype=np.float32) / 255.0
        return (torch.from_numpy(array).permute(2, 0, 1) - self.mean) / self.std

    def _prediction(self, image: np.ndarray, probs: np.ndarray, ms: float) -> Prediction:
        order = np.argsort(-probs)[:TOP_K]
        return Prediction(width=image.shape[1], height=image.shape[0], task="classify",
                          classes=[ClassScore(int(i), self.names[int(i)], float(probs[i]))
                                   for i in order], inference_ms=ms)


def _timm_config(weights: Path) -> dict:
    path = weights.with_name("model_config.json")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the timm model's config ({exc})", path=path,
                         hint="a timm model needs the model_config.json its training wrote "
                              "next to model.safetensors") from exc
    for key in ("architecture", "class_names"):
        if key not in config:
            raise ModelError(f"model_config.json has no '{key}'", path=path, field=key)
    return config


def model_family(weights: Path) -> str:
    """'timm' for a safetensors classifier, 'yolo' for an ultralytics .pt (or its .onnx)."""
    suffix = Path(weights).suffix.lower()
    if suffix == ".safetensors":
        return "timm"
    if suffix in (".pt", ".onnx"):      # ultralytics runs its ONNX exports with onnxruntime
        return "yolo"
    raise ModelError(f"LabelLoop cannot predict with a {suffix or 'suffix-less'} file",
                     path=weights, hint="use a registered model (.pt YOLO or .safetensors timm)")


def create_predictor(model: "ModelVersion | str | Path", *, project=None, model_name: str = "",
                     conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None,
                     device: str = "auto", batch: int = 8) -> Predictor:
    """The predictor of a registered version (pass its `project`: every file is checked
    against its sha256 and pickles must be trusted, before anything is loaded), or of a
    model file the caller vouches for."""
    from src.training import trust
    from src.training.device import resolve_device
    if isinstance(model, ModelVersion):
        if project is None:
            raise ValueError("a ModelVersion needs the project it belongs to")
        from src.training.models import ModelManager
        weights = ModelManager(project).weights_path(model)
        model_name = model_name or model.display_name or f"{model.task}/{model.name}"
    else:
        weights = Path(model)
    options = dict(model_name=model_name, conf=conf, iou=iou, imgsz=imgsz,
                   device=resolve_device(device), batch=batch)
    cls = TimmClassifier if model_family(weights) == "timm" else YoloPredictor
    if project is None:
        return cls(weights, **options)
    with trust.gate(project.conn):
        return cls(weights, **options)
