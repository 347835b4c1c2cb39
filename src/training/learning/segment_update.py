"""The segmentation side of an adapter update: a YOLO-seg model learns from corrected polygons.

`SEGMENT` is the `UpdateTask` that `DetectorUpdate` runs for a `segment` base: the batch
gets per-instance masks (each polygon rasterised at the prototype resolution, 1/4 of the
letterboxed image, as ultralytics' dataset does with `overlap_mask=False`) and the loss is
ultralytics' own `v8SegmentationLoss` (through `model.loss`, box + mask + class + DFL).
The validation score is the proposal score of `edits.py` (1 - edits / shapes) where a
proposal matches a truth shape by **mask IoU**: the predicted masks (prototypes times
coefficients, cropped to their boxes, as ultralytics' segment predictor makes them) against
the truth polygons rasterised on the same letterboxed image. So "the adapter is worse than
the base" means: the user would have to change more polygons.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from src.training.learning.detector_data import DetectorSample, Letterboxed, letterbox, to_batch
from src.training.learning.detector_update import _LOSS_GAINS, forward_batches
from src.training.learning.edits import (Shape, count_edits, mask_ious, polygon_mask,
                                         proposal_score)
from src.training.learning.settings import LearnSettings

MASK_RATIO = 4          # ultralytics' mask_ratio: truth masks at the prototypes' resolution


class SegmentTask:
    """Polygons: ultralytics' segmentation loss, the proposal score with mask IoU."""

    name, metric_name = "segment", "mask_proposal_score"

    def loss_args(self) -> SimpleNamespace:
        return SimpleNamespace(**vars(_LOSS_GAINS), overlap_mask=False)

    def batch(self, items: list[Letterboxed]) -> dict:
        batch = to_batch(items)
        batch["masks"] = instance_masks(items, MASK_RATIO)
        return batch

    def score(self, model: nn.Module, samples: list[DetectorSample], imgsz: int,
              settings: LearnSettings) -> list[float]:
        return score_mask_samples(model, samples, imgsz, settings)


SEGMENT = SegmentTask()


def item_polygons(item: Letterboxed) -> list[np.ndarray]:
    """The item's polygons; a sample without polygons has its boxes' rectangles."""
    if item.polygons is not None:
        return item.polygons
    return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
            for x1, y1, x2, y2 in item.boxes]


def instance_masks(items: list[Letterboxed], ratio: int = MASK_RATIO) -> torch.Tensor:
    """(instances in batch order, h / ratio, w / ratio) float masks, one per box."""
    h, w = items[0].image.shape[:2]
    size = (h // ratio, w // ratio)
    masks = [polygon_mask(p / ratio, size) for it in items for p in item_polygons(it)]
    if not masks:
        return torch.zeros((0, *size))
    return torch.from_numpy(np.stack(masks).astype(np.float32))


def score_mask_samples(model: nn.Module, samples: list[DetectorSample], imgsz: int,
                       settings: LearnSettings) -> list[float]:
    """The mask proposal score of `model` on each sample (plain letterbox, no augmentation)."""
    items = [letterbox(s, imgsz) for s in samples]
    scores = []
    for item, (found, masks) in zip(items, segment(model, items, settings)):
        hw = item.image.shape[:2]
        truth = [Shape(tuple(b), int(c)) for b, c in zip(item.boxes, item.classes)]
        truth_masks = [polygon_mask(p, hw) for p in item_polygons(item)]
        proposals = [Shape(tuple(d[:4]), int(d[5])) for d in found]
        counts = count_edits(proposals, truth, mask_ious(truth_masks, list(masks)))
        scores.append(proposal_score(counts, len(proposals), len(truth)))
    return scores


def segment(model: nn.Module, items: list[Letterboxed], settings: LearnSettings,
            batch: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per letterboxed image: (n, 6) x1 y1 x2 y2 conf cls after NMS and their (n, h, w) bool
    masks on the letterboxed image (proposals whose mask is empty are dropped, as
    ultralytics' segment predictor drops them)."""
    from ultralytics.utils import ops
    from ultralytics.utils.nms import non_max_suppression

    out = []
    for img, ((preds, proto), _raw) in forward_batches(model, items, batch):
        kept = non_max_suppression(preds, settings.conf, settings.iou, nc=model.model[-1].nc)
        for k, p in zip(kept, proto):
            masks = ops.process_mask(p, k[:, 6:], k[:, :4], img.shape[2:], upsample=True)
            keep = masks.amax((-2, -1)) > 0 if len(k) else torch.zeros(0, dtype=torch.bool)
            out.append((k[keep, :6].cpu().numpy(), masks[keep].cpu().numpy().astype(bool)))
    return out


def pack_polygons(polygons: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Ragged polygons as two arrays a sample's .npz can hold."""
    sizes = np.array([len(p) for p in polygons], np.int64)
    points = (np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in polygons])
              if polygons else np.zeros((0, 2), np.float32))
    return {"polygon_points": points, "polygon_sizes": sizes}


def unpack_polygons(arrays: dict) -> list[np.ndarray] | None:
    """The polygons `pack_polygons` stored; None for a sample without any (a detect one)."""
    if "polygon_sizes" not in arrays:
        return None
    ends = np.cumsum(arrays["polygon_sizes"])
    return [p for p in np.split(arrays["polygon_points"], ends[:-1])] if len(ends) else []
