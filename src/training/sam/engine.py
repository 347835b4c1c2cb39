"""One loaded SAM model (SAM 2 or MobileSAM, built by ultralytics) and the three things we
ask of it: an embedding per frame (the expensive encoder), masks from a prompt and a cached
embedding (decoder only), and mask logits mapped back to original pixels.

We call ultralytics' modules directly instead of its Predictor classes because those own the
image (they re-run or hold one encoder output) while we cache embeddings per source frame
and swap the mask decoder for an adapted copy (LIT-LoRA).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from src.training.sam import fast_decoder
from src.training.sam.prompts import Letterbox, MaskCandidate, Prompt
from src.training.sam.weights import SAM_MODELS, SamWeights

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
PAD_VALUE = 114          # ultralytics' LetterBox fill
DECODER_STATES = 3       # frames whose prompt-independent decoder inputs stay prepared


@dataclass
class FrameEmbedding:
    """The encoder's output for one frame. SAM 2: three FPN levels (high-res ones already
    projected by the decoder's conv_s0/conv_s1, as ultralytics' forward_image does);
    MobileSAM: one. Tensors are 1xCxHxW float32 on the CPU."""
    feats: list[torch.Tensor]
    letterbox: Letterbox

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.feats)


class ClickGate:
    """Clicks before background encoding: while a click decodes, the image encoder (run in
    a background thread to precompute embeddings) waits at its next module call, so the
    click has both cores (torch's intra-op threads) to itself instead of sharing them with
    an encoder that takes seconds. The encoder resumes where it stopped; its result is
    unchanged. A thread holding a click never waits on its own gate."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._holders: dict[int, int] = {}
        self.enabled = True                # False: clicks and encoding share the cores
        self.waits = 0                     # times the encoder stopped for a click
        self.waiting = threading.Event()   # set while the encoder is stopped (tests, bench)

    @contextmanager
    def click(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        me = threading.get_ident()
        with self._lock:
            self._holders[me] = self._holders.get(me, 0) + 1
            self._open.clear()
        try:
            yield
        finally:
            with self._lock:
                self._holders[me] -= 1
                if not self._holders[me]:
                    del self._holders[me]
                if not self._holders:
                    self._open.set()

    def wait(self, *_args) -> None:
        """Forward pre-hook of the encoder's modules: block while a click decodes."""
        if self._open.is_set() or threading.get_ident() in self._holders:
            return
        self.waits += 1
        self.waiting.set()
        self._open.wait()
        self.waiting.clear()


class LazyMaskCandidate(MaskCandidate):
    """A MaskCandidate whose original-pixel mask is computed on first access: a click
    shows the best candidate, the others are upsampled only when the user cycles to them."""

    def __init__(self, compute: Callable[[], np.ndarray], iou: float) -> None:
        self._compute, self._mask, self.iou = compute, None, iou

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = self._compute()
        return self._mask

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        self._mask = value


class SamEngine:
    """A SAM model in eval mode at one input size. Not thread-safe: one user at a time."""

    def __init__(self, model: torch.nn.Module, weights: SamWeights, image_size: int) -> None:
        self.model, self.weights, self.image_size = model.eval(), weights, image_size
        self.is_sam2 = SAM_MODELS[weights.name][2]
        self._swap_lock = threading.RLock()
        self.base_decoder = self.decoder          # never replaced: adapters work on copies
        self._states: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self._states_lock = threading.Lock()
        self._dense_pe: torch.Tensor | None = None
        self._resize: dict[tuple[Letterbox, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.gate = ClickGate()
        for module in self.model.image_encoder.modules():
            if not any(True for _ in module.children()):
                module.register_forward_pre_hook(self.gate.wait)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @classmethod
    def load(cls, weights: SamWeights, image_size: int = 1024) -> "SamEngine":
        """Build the architecture with ultralytics and load the weights (None: untrained)."""
        from ultralytics.models.sam import build as sam_build

        builder = getattr(sam_build, SAM_MODELS[weights.name][1])
        model = builder(str(weights.path) if weights.path else None)
        if image_size != 1024:
            model.set_imgsz((image_size, image_size))
        return cls(model.float(), weights, image_size)

    @property
    def key(self) -> str:
        """Names the embeddings this engine makes (cache folders are per key)."""
        kind = "untrained" if self.weights.untrained else self.weights.path.stat().st_size
        return f"{self.weights.name}-{self.image_size}-{kind}"

    @property
    def mask_threshold(self) -> float:
        """Logit above which a pixel is in the mask (ultralytics' `mask_threshold`, 0)."""
        return float(getattr(self.model, "mask_threshold", 0.0))

    @property
    def decoder(self) -> torch.nn.Module:
        """The decoder the model holds now (the base one outside `using_decoder`)."""
        return self.model.sam_mask_decoder if self.is_sam2 else self.model.mask_decoder

    @contextmanager
    def using_decoder(self, decoder: torch.nn.Module | None) -> Iterator[None]:
        """Run ultralytics' own methods (tracking) with `decoder` in place of the base one,
        then put it back. Serialised: only one thread at a time swaps the live attribute."""
        with self._swap_lock:
            if decoder is None:
                yield
                return
            attr = "sam_mask_decoder" if self.is_sam2 else "mask_decoder"
            base = getattr(self.model, attr)
            setattr(self.model, attr, decoder)
            try:
                yield
            finally:
                setattr(self.model, attr, base)

    # -- encoder ------------------------------------------------------------------------
    def letterbox(self, height: int, width: int) -> Letterbox:
        return Letterbox(height, width, self.image_size)

    def preprocess(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, Letterbox]:
        h, w = image_bgr.shape[:2]
        box = self.letterbox(h, w)
        ih, iw = box.inner
        canvas = np.full((self.image_size, self.image_size, 3), PAD_VALUE, np.uint8)
        canvas[:ih, :iw] = cv2.resize(image_bgr, (iw, ih), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(np.ascontiguousarray(canvas[..., ::-1])).permute(2, 0, 1).float()
        mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
        std = torch.tensor(PIXEL_STD).view(3, 1, 1)
        return ((x - mean) / std)[None], box

    @torch.inference_mode()
    def embed(self, image_bgr: np.ndarray) -> FrameEmbedding:
        """Run the image encoder once (the seconds-per-frame part)."""
        x, box = self.preprocess(image_bgr)
        if self.is_sam2:
            feats = [f.clone() for f in self.model.forward_image(x)["backbone_fpn"]]
        else:
            feats = [self.model.image_encoder(x).clone()]
        return FrameEmbedding(feats, box)

    # -- decoder ------------------------------------------------------------------------
    def prompt_tensors(self, prompt: Prompt, box: Letterbox) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (and box corners, labels 2/3 as SAM 2 takes them) in model input pixels."""
        coords, labels = [], []
        if prompt.box is not None:
            x1, y1, x2, y2 = prompt.box
            coords += [[x1, y1], [x2, y2]]
            labels += [2, 3]
        for p in prompt.points:
            coords.append([p.x, p.y])
            labels.append(1 if p.positive else 0)
        pts = torch.tensor(coords, dtype=torch.float32)[None] * box.scale
        return pts, torch.tensor(labels, dtype=torch.int32)[None]

    def image_inputs(self, emb: FrameEmbedding) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """(image embedding, high-res features) as the decoder takes them for a still image."""
        if not self.is_sam2:
            return emb.feats[0], None
        embed = emb.feats[-1]
        if self.model.directly_add_no_mem_embed:
            embed = embed + self.model.no_mem_embed.view(1, -1, 1, 1)
        return embed, emb.feats[:-1]

    def decode_logits(self, image_embed: torch.Tensor, high_res: list[torch.Tensor] | None,
                      points: torch.Tensor | None, labels: torch.Tensor | None,
                      multimask: bool, decoder: torch.nn.Module | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(low-res mask logits BxMxhxw, predicted IoU BxM, object score logits or None).
        Differentiable: the LoRA update trains through it. `decoder` is used as given (a
        training thread passes its copy; it never swaps the live one). Default: the base
        decoder, whatever a tracking thread has swapped in meanwhile."""
        dec = decoder if decoder is not None else self.base_decoder
        if points is None:       # no prompt: one padding point, as SAM 2 tracking does
            points = torch.zeros(image_embed.shape[0], 1, 2)
            labels = -torch.ones(image_embed.shape[0], 1, dtype=torch.int32)
        if self.is_sam2:
            sparse, dense = self.model.sam_prompt_encoder(points=(points, labels), boxes=None,
                                                          masks=None)
            masks, ious, _, obj = dec(
                image_embeddings=image_embed, image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=multimask, repeat_image=False, high_res_features=high_res)
            return masks, ious, obj
        sparse, dense = self.model.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        masks, ious = dec(
            image_embeddings=image_embed, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask)
        return masks, ious, None

    @property
    def prompt_encoder(self) -> torch.nn.Module:
        return self.model.sam_prompt_encoder if self.is_sam2 else self.model.prompt_encoder

    def dense_pe(self) -> torch.Tensor:
        """The decoder's positional encoding (depends only on the input size: computed once)."""
        if self._dense_pe is None:
            with torch.inference_mode():
                self._dense_pe = self.prompt_encoder.get_dense_pe()
        return self._dense_pe

    def decoder_state(self, emb: FrameEmbedding, decoder: torch.nn.Module | None = None
                      ) -> fast_decoder.FrameState:
        """The prompt-independent decoder work on `emb` for `decoder` (None: the base), done
        on the first click of a frame and kept for the last DECODER_STATES frames."""
        dec = decoder if decoder is not None else self.base_decoder
        key = (id(emb), id(dec))
        with self._states_lock:
            hit = self._states.get(key)
            if hit is not None and hit[0]() is emb and hit[1]() is dec:
                self._states.move_to_end(key)
                return hit[2]
        with torch.inference_mode():
            image_embed, high_res = self.image_inputs(emb)
            _, dense = self.prompt_encoder(points=None, boxes=None, masks=None)
            state = fast_decoder.prepare(dec, image_embed, self.dense_pe(), dense, high_res)
        with self._states_lock:
            self._states[key] = (weakref.ref(emb), weakref.ref(dec), state)
            while len(self._states) > DECODER_STATES:
                self._states.popitem(last=False)
        return state

    def prepare_frame(self, emb: FrameEmbedding, decoder: torch.nn.Module | None = None) -> None:
        """Do the first click's prompt-independent work now (e.g. when the frame opens, in
        the worker that embedded it) so that the first click costs what the next ones do."""
        self.decoder_state(emb, decoder)

    @torch.inference_mode()
    def decode_fast(self, emb: FrameEmbedding, points: torch.Tensor, labels: torch.Tensor,
                    multimask: bool, decoder: torch.nn.Module | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`decode_logits` for a still image from the frame's prepared decoder state
        (`fast_decoder`): the same logits up to float rounding, not differentiable."""
        dec = decoder if decoder is not None else self.base_decoder
        state = self.decoder_state(emb, dec)
        sparse, _ = self.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        masks, ious, obj = fast_decoder.fast_predict(dec, state, sparse, multimask_only=multimask)
        if not multimask:
            masks, ious = fast_decoder.select(dec, masks, ious, multimask)
        return masks, ious, obj

    @torch.inference_mode()
    def segment(self, emb: FrameEmbedding, prompt: Prompt, *, multimask: bool = True,
                decoder: torch.nn.Module | None = None, fast: bool = True
                ) -> list[MaskCandidate]:
        """Candidate masks for `prompt`, best predicted IoU first (decoder only). `fast`:
        the prepared-state decoder and cropped upsampling; False: the reference path
        (ultralytics' decoder forward, full-frame interpolation), kept for comparison."""
        with self.gate.click():
            return self._segment(emb, prompt, multimask, decoder, fast)

    def _segment(self, emb: FrameEmbedding, prompt: Prompt, multimask: bool,
                 decoder: torch.nn.Module | None, fast: bool) -> list[MaskCandidate]:
        points, labels = self.prompt_tensors(prompt, emb.letterbox)
        if fast:
            logits, ious, _ = self.decode_fast(emb, points, labels, multimask, decoder)
            cands = [LazyMaskCandidate(partial(self.to_original_cropped, m, emb.letterbox),
                                       _unit(i)) for m, i in zip(logits[0], ious[0].tolist())]
        else:
            image_embed, high_res = self.image_inputs(emb)
            logits, ious, _ = self.decode_logits(image_embed, high_res, points, labels,
                                                 multimask, decoder)
            masks = self.to_original(logits[0], emb.letterbox)
            cands = [MaskCandidate(m, _unit(i)) for m, i in zip(masks, ious[0].tolist())]
        cands.sort(key=lambda c: -c.iou)
        _ = cands[0].mask          # the one shown at once; the others when the user cycles
        return cands

    def to_original(self, logits: torch.Tensor, box: Letterbox) -> np.ndarray:
        """Low-res logits MxhXw → bool masks MxHxW in original pixels (crop the padding)."""
        up = F.interpolate(logits[None].float(), size=(self.image_size, self.image_size),
                           mode="bilinear", align_corners=False)
        ih, iw = box.inner
        up = F.interpolate(up[..., :ih, :iw], size=(box.height, box.width), mode="bilinear",
                           align_corners=False)
        return (up[0] > self.mask_threshold).numpy()

    def to_original_cropped(self, logits: torch.Tensor, box: Letterbox) -> np.ndarray:
        """`to_original` of one hxw mask computed only around its positive pixels.

        The two bilinear resizes of `to_original` compose into one linear map per axis
        (`resize_matrices`, read off F.interpolate itself), and a pixel all of whose taps
        are at or below the threshold stays below it (bilinear weights are convex), so
        only the rows/columns that touch a positive low-res pixel are computed, from the
        low-res window around them (2 pixels of margin cover every tap)."""
        thr = self.mask_threshold
        out = np.zeros((box.height, box.width), bool)
        pos = logits > thr
        rows, cols = torch.nonzero(pos.any(1)).flatten(), torch.nonzero(pos.any(0)).flatten()
        if len(rows) == 0:
            return out
        ry, rx = self.resize_matrices(box, logits.shape[-1])
        y_out, y_in = _window(ry, int(rows[0]), int(rows[-1]))
        x_out, x_in = _window(rx, int(cols[0]), int(cols[-1]))
        window = logits[y_in, x_in].float()
        up = ry[y_out, y_in] @ window @ rx[x_out, x_in].T
        out[y_out, x_out] = (up > thr).numpy()
        return out

    def resize_matrices(self, box: Letterbox, low: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(H x low, W x low): `to_original`'s two resizes along each axis as matrices,
        obtained by running those very resizes on unit vectors (one per low-res pixel)."""
        key = (box, low)
        if key not in self._resize:
            self._resize[key] = (_axis_matrix(low, self.image_size, box.inner[0], box.height),
                                 _axis_matrix(low, self.image_size, box.inner[1], box.width))
        return self._resize[key]

    def to_input(self, mask: np.ndarray, box: Letterbox, size: int) -> torch.Tensor:
        """An original-pixel bool mask → a float 1x1xsize x size mask in the letterboxed input."""
        ih, iw = box.inner
        canvas = np.zeros((self.image_size, self.image_size), np.float32)
        canvas[:ih, :iw] = cv2.resize(mask.astype(np.float32), (iw, ih),
                                      interpolation=cv2.INTER_AREA)
        small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small)[None, None]


def _axis_matrix(low: int, size: int, inner: int, out: int) -> torch.Tensor:
    """out x low: low → size (bilinear), keep the first `inner`, → out (bilinear), along one
    axis, as `to_original` does it (a 1-wide second axis makes F.interpolate 1-D)."""
    eye = torch.eye(low)[:, :, None]                                   # 1 x low x low x 1
    up = F.interpolate(eye[None], size=(size, 1), mode="bilinear", align_corners=False)
    up = F.interpolate(up[:, :, :inner], size=(out, 1), mode="bilinear", align_corners=False)
    return up[0, :, :, 0].T.contiguous()


def _window(matrix: torch.Tensor, first: int, last: int) -> tuple[slice, slice]:
    """(the output rows with a tap in low-res [first, last], every low-res row they tap)."""
    touched = torch.nonzero((matrix[:, first:last + 1] != 0).any(1)).flatten()
    rows = slice(int(touched[0]), int(touched[-1]) + 1)
    taps = torch.nonzero((matrix[rows] != 0).any(0)).flatten()
    return rows, slice(int(taps[0]), int(taps[-1]) + 1)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
