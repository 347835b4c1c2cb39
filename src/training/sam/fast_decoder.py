"""The SAM / SAM 2 mask decoder computed with fewer memory passes: the same modules and
weights as ultralytics' `MaskDecoder` / `SAM2MaskDecoder` + `TwoWayTransformer`, the same
arithmetic up to float rounding, laid out for a CPU.

Why: profiling ultralytics' decoder on one click (SAM 2 tiny, 64x64 image tokens) shows
the time going to memory passes over the 4096x256 image tokens rather than to matmuls:
adds on permuted (non-contiguous) views, head split/merge copies, a softmax over a last
dimension of 7 tokens through transposes, the two ConvTranspose2d of the upscaling and
sine positional encodings recomputed on every call. Here:
- image tokens stay contiguous (B, N, C) from start to end;
- multi-head attention between the few prompt tokens and the many image tokens is one
  matmul against a block-diagonal matrix built from the *small* side: no head split/merge
  copies of the 4096 tokens, at the price of 8x the multiply-adds in these small
  products (not measured against a per-head einsum yet);
- the image-to-token softmax runs over the 7 token scores along a middle axis (vectorised
  over the 4096 queries): along a last axis of 7 it took ~20x longer;
- a 2x2 stride-2 ConvTranspose2d is a matmul to (dy, dx, channel) columns, and the
  high-res features are permuted once per frame into that layout, so the upscaling and
  the hypernetwork product never transpose the large maps;
- `FrameState` holds per frame what does not depend on the prompt: image tokens + the
  no-mask dense embedding, the positional encoding, the high-res features in block layout
  and the first layer's image-side projections (its keys are the raw image tokens).

Works for a LoRA-adapted decoder copy (it calls the decoder's own linear modules) and under
autograd: LIT-LoRA trains through it with `first_layer="base"` (layer 0's base projections
cached per update, their LoRA deltas recomputed per step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FrameState:
    """Prompt-independent decoder inputs of one frame (batch B) for one decoder."""
    src: torch.Tensor                   # (B, N, C) image tokens + dense (no-mask) embedding
    pe: torch.Tensor                    # (1, N, C) positional encoding of the tokens
    hw: tuple[int, int]                 # token grid (h, w)
    high_res: tuple[torch.Tensor, torch.Tensor] | None    # s1, s0 in block layout
    first_layer: tuple[torch.Tensor, ...] | None = None   # layer 0: (k t2i, v t2i, q i2t)
    first_layer_base: bool = False      # first_layer holds the base linears' outputs only:
                                        # the LoRA deltas are added on every forward

    def select(self, index: torch.Tensor) -> "FrameState":
        """The frames `index` of a batched state (a training batch)."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        high = None if self.high_res is None else tuple(pick(t) for t in self.high_res)
        first = None if self.first_layer is None else tuple(pick(t) for t in self.first_layer)
        return FrameState(pick(self.src), self.pe, self.hw, high, first, self.first_layer_base)


def prepare(decoder: nn.Module, image_embed: torch.Tensor, image_pe: torch.Tensor,
            dense: torch.Tensor, high_res: list[torch.Tensor] | None, *,
            first_layer: str = "full") -> FrameState:
    """Lay out one frame's prompt-independent inputs (B x C x h x w maps) for `fast_predict`.
    `first_layer`: "full" projects layer 0's image tokens with the decoder as it is (for
    inference), "base" with its base linears only (training: the LoRA deltas, rank r,
    are recomputed on each forward), "none" leaves them to every forward."""
    b, c, h, w = image_embed.shape
    src = (image_embed + dense).flatten(2).transpose(1, 2).contiguous()
    pe = image_pe.flatten(2).transpose(1, 2).contiguous()
    blocks = None
    if high_res is not None and getattr(decoder, "use_high_res_features", False):
        blocks = (_block_layout(high_res[1], h, w, 2), _block_layout(high_res[0], h, w, 4))
    state = FrameState(src, pe, (h, w), blocks)
    if first_layer != "none":
        base = first_layer == "base"
        proj = (lambda m: getattr(m, "base_layer", m)) if base else (lambda m: m)
        layer = decoder.transformer.layers[0]
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        with_pe = src + pe
        state.first_layer = (proj(t2i.k_proj)(with_pe), proj(t2i.v_proj)(src),
                             proj(i2t.q_proj)(with_pe))
        state.first_layer_base = base
    return state


def lora_delta(linear: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """What a PEFT LoRA layer adds to its base linear's output on `x` (None: plain linear),
    as peft's `lora.Linear.forward` computes it for vanilla LoRA."""
    if not hasattr(linear, "lora_A") or linear.disable_adapters or linear.merged:
        return None
    out = None
    for name in linear.active_adapters:
        if name in linear.lora_A:
            delta = linear.lora_B[name](linear.lora_A[name](linear.lora_dropout[name](x)))
            delta = delta * linear.scaling[name]
            out = delta if out is None else out + delta
    return out


def _block_layout(feat: torch.Tensor, h: int, w: int, factor: int) -> torch.Tensor:
    """(B, C, h*f, w*f) → (B, h*w, f*f*C) with rows (y, x) and columns (sub-pixel, C), the
    sub-pixel order being the one the chained 2x2 transposed convolutions produce."""
    b, c = feat.shape[:2]
    if factor == 2:
        x = feat.view(b, c, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1)       # y x dy dx c
    else:
        x = feat.view(b, c, h, 2, 2, w, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1)  # y x dy dx dy2 dx2 c
    return x.reshape(b, h * w, factor * factor * c)


def fast_predict(decoder: nn.Module, state: FrameState, sparse: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`predict_masks` of the decoder: (all mask logits B x M x 4h x 4w, IoU B x M,
    object score logits B x 1 or None for a decoder without an object-score token)."""
    s = 1 if getattr(decoder, "pred_obj_scores", False) else 0
    weights = [decoder.iou_token.weight, decoder.mask_tokens.weight]
    if s:
        weights.insert(0, decoder.obj_score_token.weight)
    out_tokens = torch.cat(weights, 0)[None].expand(sparse.shape[0], -1, -1)
    tokens = torch.cat((out_tokens, sparse), dim=1)
    hs, keys = _transformer(decoder.transformer, state, tokens)
    m = decoder.num_mask_tokens
    mask_tokens = hs[:, s + 1:s + 1 + m]
    hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in
                         enumerate(decoder.output_hypernetworks_mlps)], dim=1)   # B x M x c8
    masks = _upscaled_masks(decoder, keys, state, hyper)
    iou = decoder.iou_prediction_head(hs[:, s])
    if s:
        obj = decoder.pred_obj_score_head(hs[:, 0])
    elif hasattr(decoder, "pred_obj_scores"):     # SAM 2 without the head: "present" (10)
        obj = 10.0 * iou.new_ones(iou.shape[0], 1)
    else:                                          # SAM 1 / MobileSAM: no object score
        obj = None
    return masks, iou, obj


def select(decoder: nn.Module, masks: torch.Tensor, iou: torch.Tensor, multimask: bool
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs `forward` keeps (SAM 2's stability fallback for a single mask included)."""
    if multimask:
        return masks[:, 1:], iou[:, 1:]
    if getattr(decoder, "dynamic_multimask_via_stability", False) and not decoder.training:
        return decoder._dynamic_multimask_via_stability(masks, iou)
    return masks[:, :1], iou[:, :1]


# -- transformer ------------------------------------------------------------------------

def _transformer(tf: nn.Module, state: FrameState, point_embedding: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    batch = point_embedding.shape[0]
    keys = state.src if state.src.shape[0] == batch else state.src.expand(batch, -1, -1)
    queries, pe = point_embedding, state.pe
    for i, layer in enumerate(tf.layers):
        first = state.first_layer if i == 0 else None
        queries, keys = _block(layer, queries, keys, point_embedding, pe, first,
                               state.first_layer_base)
    q = queries + point_embedding
    k = keys + pe
    attn = tf.final_attn_token_to_image
    out = _tokens_to_image(attn, attn.q_proj(q), attn.k_proj(k), attn.v_proj(keys))
    queries = tf.norm_final_attn(queries + attn.out_proj(out))
    return queries, keys


def _with_lora(base: tuple, linears: tuple, keys: torch.Tensor, key_pe: torch.Tensor) -> tuple:
    """Layer 0's image-side projections: the cached base outputs + the LoRA deltas."""
    k = keys + key_pe
    out = []
    for value, linear, x in zip(base, linears, (k, keys, k)):
        delta = lora_delta(linear, x)
        out.append(value if delta is None else value + delta)
    return tuple(out)


def _block(layer: nn.Module, queries, keys, query_pe, key_pe, first, first_base=False):
    """`TwoWayAttentionBlock.forward` with image tokens kept contiguous."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)

    t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
    if first is not None:
        k_t2i, v_t2i, q_i2t = first
        if first_base:
            k_t2i, v_t2i, q_i2t = _with_lora(first, (t2i.k_proj, t2i.v_proj, i2t.q_proj),
                                             keys, key_pe)
    else:
        k = keys + key_pe
        k_t2i, v_t2i, q_i2t = t2i.k_proj(k), t2i.v_proj(keys), i2t.q_proj(k)
    q = queries + query_pe
    out = _tokens_to_image(t2i, t2i.q_proj(q), k_t2i, v_t2i)
    queries = layer.norm2(queries + t2i.out_proj(out))
    queries = layer.norm3(queries + layer.mlp(queries))

    q = queries + query_pe
    out = _image_to_tokens(i2t, q_i2t, i2t.k_proj(q), i2t.v_proj(queries))
    keys = layer.norm4(keys + i2t.out_proj(out))
    return queries, keys


def _diag_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, H*d) → (B, H, T, H, d) that is x on the head diagonal and 0 elsewhere."""
    b, t, hd = x.shape
    per_head = x.view(b, t, heads, hd // heads).transpose(1, 2)              # B H T d
    eye = torch.eye(heads, dtype=x.dtype, device=x.device)
    return per_head[:, :, :, None, :] * eye[None, :, None, :, None]


def _tokens_to_image(attn: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                     ) -> torch.Tensor:
    """Few queries (B, T, D) attend to many keys (B, N, D): heads as a block-diagonal query."""
    b, t, d = q.shape
    heads = attn.num_heads
    q_bd = _diag_heads(q * (d // heads) ** -0.5, heads).reshape(b, heads * t, d)
    probs = torch.softmax(q_bd @ k.transpose(1, 2), dim=-1)                 # B (H T) N
    full = (probs @ v).view(b, heads, t, heads, d // heads)
    return torch.diagonal(full, dim1=1, dim2=3).permute(0, 1, 3, 2).reshape(b, t, d)


def _image_to_tokens(attn: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                     ) -> torch.Tensor:
    """Many queries (B, N, D) attend to few keys (B, T, D): heads as block-diagonal keys.
    Scores are laid out (B, H, T, N) so that the softmax over the T keys runs along a
    middle axis (vectorised over N); along a last axis of 7 it is ~20x slower."""
    b, n, d = q.shape
    t, heads = k.shape[1], attn.num_heads
    k_bd = _diag_heads(k * (d // heads) ** -0.5, heads).reshape(b, heads * t, d)
    v_bd = _diag_heads(v, heads).reshape(b, heads * t, d)
    scores = (k_bd @ q.transpose(1, 2)).view(b, heads, t, n)
    probs = torch.softmax(scores, dim=2).view(b, heads * t, n)
    return probs.transpose(1, 2) @ v_bd


# -- upscaling ------------------------------------------------------------------------

def _upscaled_masks(decoder: nn.Module, keys: torch.Tensor, state: FrameState,
                    hyper: torch.Tensor) -> torch.Tensor:
    """output_upscaling (+ high-res features) and the hypernetwork product, as matmuls; the
    bias and high-res addition ride in the matmul (baddbmm)."""
    dc1, ln1, act1, dc2, act2 = decoder.output_upscaling
    b, n, _ = keys.shape
    c4, c8 = dc1.out_channels, dc2.out_channels
    add1, add2 = dc1.bias.repeat(4), dc2.bias.repeat(4)          # per (dy dx c) column
    if state.high_res is not None:
        s1, s0 = state.high_res
        add1, add2 = s1 + add1, s0.view(s0.shape[0], n * 4, 4 * c8) + add2
    x = torch.baddbmm(add1, keys, _convt_matrix(dc1).expand(b, -1, -1))      # B N (dy dx c4)
    x = act1(F.layer_norm(x.view(b, n * 4, c4), (c4,), ln1.weight, ln1.bias, ln1.eps))
    x = torch.baddbmm(add2, x, _convt_matrix(dc2).expand(b, -1, -1))         # B (N 4) (4 c8)
    x = act2(x)
    m = hyper.shape[1]
    masks = x.view(b, n * 16, c8) @ hyper.transpose(1, 2)                    # B (N 16) M
    h, w = state.hw
    masks = masks.view(b, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(b, m, 4 * h, 4 * w)


def _convt_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """A 2x2 stride-2 ConvTranspose2d's weight (Cin, Cout, 2, 2) as Cin x (dy dx Cout)."""
    w = conv.weight
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
