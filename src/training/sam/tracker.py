"""Tracking one object through a video with SAM 2's memory, one frame at a time.

ultralytics' SAM2VideoPredictor owns the whole video (it loads every frame through its own
dataset and encodes them itself), so it cannot run from our per-frame embedding cache or
with an adapted decoder. `MaskTracker` drives the same model method it drives —
`SAM2Model._track_step` + `_encode_memory_in_output`, with the same `output_dict` of
conditioning / non-conditioning frame outputs — from cached embeddings, and keeps the
predicted IoU that `track_step` drops. A frame with the user's points is a conditioning
frame (as `add_new_prompts` makes it); outputs after a corrected frame are dropped so that
propagation restarts from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from src.errors import ModelError
from src.training.sam.engine import FrameEmbedding, SamEngine
from src.training.sam.prompts import Prompt

KEEP_NON_COND = 16          # SAM 2 looks back at most max_obj_ptrs_in_encoder frames


@dataclass
class TrackedMask:
    """One frame's mask of the tracked object, in original pixels."""
    frame_index: int
    mask: np.ndarray
    confidence: float           # the decoder's predicted IoU; 0 when SAM 2 says "absent"
    present: bool
    conditioned: bool           # the user's prompt (or mask) is on this frame


@dataclass
class DecoderInputs:
    """What the mask decoder saw on a frame (memory-conditioned), kept for LIT-LoRA samples."""
    image_embed: torch.Tensor
    high_res: list[torch.Tensor]


class MaskTracker:
    """SAM 2 memory tracking of one object; `decoder` (an adapted copy) replaces the base
    mask decoder when set."""

    def __init__(self, engine: SamEngine, num_frames: int) -> None:
        if not engine.is_sam2:
            raise ModelError(f"{engine.weights.name} has no memory: tracking needs SAM 2",
                             field="model", hint="use sam2_t (put sam2_t.pt in models/base/)")
        self.engine, self.num_frames = engine, num_frames
        self.decoder: torch.nn.Module | None = None
        self.output_dict: dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        self.last_inputs: DecoderInputs | None = None
        self._pos_cache: dict[tuple, torch.Tensor] = {}

    @property
    def started(self) -> bool:
        return bool(self.output_dict["cond_frame_outputs"])

    def add_prompt(self, frame_index: int, emb: FrameEmbedding, prompt: Prompt) -> TrackedMask:
        """Points/box on a frame: the first one starts the track, a later one corrects it
        (SAM 2 uses the frame's previous mask as a mask prompt too) and the outputs after it
        are dropped."""
        points, labels = self.engine.prompt_tensors(prompt, emb.letterbox)
        prev = self._previous_logits(frame_index)
        return self._run(frame_index, emb, {"point_coords": points, "point_labels": labels},
                         None, prev, cond=True)

    def add_mask(self, frame_index: int, emb: FrameEmbedding, mask: np.ndarray) -> TrackedMask:
        """Start (or restart) from an accepted mask (an existing polygon): SAM 2 takes it as
        the frame's output."""
        size = self.engine.image_size
        mask_in = self.engine.to_input(mask, emb.letterbox, size) > 0.5
        return self._run(frame_index, emb, None, mask_in.float(), None, cond=True)

    def step(self, frame_index: int, emb: FrameEmbedding) -> TrackedMask:
        """Propagate to `frame_index` from the memory of the frames before it."""
        if not self.started:
            raise ModelError("tracking has no object yet", hint="click or pick the object first")
        return self._run(frame_index, emb, None, None, None, cond=False)

    def preview(self, frame_index: int, emb: FrameEmbedding,
                decoder: torch.nn.Module | None) -> TrackedMask:
        """What `decoder` (None: the base) gives on this frame from the memory of the frames
        before it, storing nothing: original vs adapted, side by side."""
        return self._run(frame_index, emb, None, None, None, cond=False, store=False,
                         decoder=decoder or self.engine.base_decoder)

    def forget_after(self, frame_index: int) -> None:
        """Drop propagated outputs after `frame_index` (a correction re-propagates them)."""
        non_cond = self.output_dict["non_cond_frame_outputs"]
        for idx in [i for i in non_cond if i > frame_index]:
            del non_cond[idx]

    # -- internals --------------------------------------------------------------------
    def _run(self, frame_index, emb, point_inputs, mask_inputs, prev_logits, *, cond: bool,
             store: bool = True, decoder: torch.nn.Module | None = None) -> TrackedMask:
        model = self.engine.model
        feats, pos, sizes = self._vision(emb)
        is_init = not self.started or (cond and self._only_cond_is(frame_index))
        decoder = decoder if decoder is not None else self.decoder
        with torch.inference_mode(), self.engine.using_decoder(decoder):
            outs, high_res, pix_feat = model._track_step(
                frame_index, is_init, feats, pos, sizes, point_inputs, mask_inputs,
                self.output_dict, self.num_frames, False, prev_logits)
            _, _, ious, low, high, obj_ptr, obj_score = outs
            out = {"pred_masks": low, "pred_masks_high_res": high, "obj_ptr": obj_ptr,
                   "object_score_logits": obj_score}
            model._encode_memory_in_output(feats, sizes, point_inputs, store, high, obj_score,
                                           out)
        if store:
            self._store(frame_index, out, cond)
        if store and high_res is not None:
            self.last_inputs = DecoderInputs(pix_feat.clone(), [h.clone() for h in high_res])
        present = bool(obj_score.item() > 0) if obj_score is not None else True
        iou = float(ious.max()) if mask_inputs is None else 1.0
        mask = self.engine.to_original(low[0], emb.letterbox)[0]
        return TrackedMask(frame_index, mask, min(1.0, max(0.0, iou)) if present else 0.0,
                           present, cond)

    def _only_cond_is(self, frame_index: int) -> bool:
        return set(self.output_dict["cond_frame_outputs"]) <= {frame_index}

    def _previous_logits(self, frame_index: int) -> torch.Tensor | None:
        for key in ("cond_frame_outputs", "non_cond_frame_outputs"):
            out = self.output_dict[key].get(frame_index)
            if out is not None:
                return out["pred_masks"]
        return None

    def _store(self, frame_index: int, out: dict, cond: bool) -> None:
        cond_out, non_cond = (self.output_dict["cond_frame_outputs"],
                              self.output_dict["non_cond_frame_outputs"])
        if cond:
            non_cond.pop(frame_index, None)
            cond_out[frame_index] = out
            self.forget_after(frame_index)
        else:
            non_cond[frame_index] = out
            for idx in [i for i in non_cond if i < frame_index - KEEP_NON_COND]:
                del non_cond[idx]

    def _vision(self, emb: FrameEmbedding):
        """(flattened features, positional encodings, sizes) as _prepare_backbone_features
        gives them; the sine encodings depend only on the shape, so they are recomputed."""
        neck = self.engine.model.image_encoder.neck
        feats, pos, sizes = [], [], []
        for f in emb.feats:
            key = tuple(f.shape)
            if key not in self._pos_cache:
                with torch.inference_mode():
                    self._pos_cache[key] = neck.position_encoding(f).to(f.dtype)
            feats.append(f.flatten(2).permute(2, 0, 1))
            pos.append(self._pos_cache[key].flatten(2).permute(2, 0, 1))
            sizes.append((f.shape[-2], f.shape[-1]))
        return feats, pos, sizes
