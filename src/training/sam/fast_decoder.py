"""The SAM / SAM 2 mask decoder computed with fewer memory passes: the same modules and
weights as ultralytics' `MaskDecoder` / `SAM2MaskDecoder` + `TwoWayTransformer`, the same
arithmetic up to float rounding, laid out for a CPU.

Why: profiling ultralytics' decoder on one click (SAM 2 tiny, 64x64 image tokens) shows
the time going to memory passes over the 4096x256 image tokens rather than to matmuls:
adds on permuted (non-contiguous) views, head split/merge copies, a softmax over a last
dimension of 7 tokens through transposes, the two ConvTranspose2d of the upscaling and
sine positional encodings recomputed on every call. Here:
- image tokens stay contiguous (B, N, C) from start to end;
- the image tokens are not projected in the cross-attentions after the first layer: each
  head's key (query) projection is folded into the few prompt tokens' queries (keys),
  and the value (output) projection applied on the prompt-token side of the
  probabilities, so the attention is two products between the N image tokens and
  H*T = 64 rows instead of an N x C x C/2 projection per map (the multiply-adds on the
  image tokens halve, and no projected N-token map is made: transformer forward 44 → 22
  ms at 1024 px, 2 threads). The first layer's projections are prepared per frame, and
  there the heads are one matmul against a block-diagonal matrix built from the small
  side (no head split/merge copies of the 4096 tokens);
- the image-to-token softmax runs over the 7 token scores along a middle axis (vectorised
  over the 4096 queries): along a last axis of 7 it took ~20x longer;
- a 2x2 stride-2 ConvTranspose2d is a matmul to (dy, dx, channel) columns, and the
  high-res features are permuted once per frame into that layout, so the upscaling and
  the hypernetwork product never transpose the large maps;
- `FrameState` holds per frame what does not depend on the prompt: image tokens + the
  no-mask dense embedding, the positional encoding, the high-res features in block layout
  with the transposed convolutions' biases added, and the first layer's image-side
  projections (its keys are the raw image tokens).

Works for a LoRA-adapted decoder copy and under autograd: a vanilla PEFT LoRA linear is
used as W + scaling * B A where a projection is folded (`_weight`), or as its base plus a
rank-r product added inside the matmul (`_add_lora`); other LoRA variants go through their
own forward. LIT-LoRA trains through it with `first_layer="base"` (layer 0's base
projections cached per update, their LoRA deltas recomputed per step), on the multimask
candidates only and with the loss taken in block pixel order (`blocks=True`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FrameState:
    """Prompt-independent decoder inputs of one frame (batch B) for one decoder."""
    src: torch.Tensor                   # (B, N, C) image tokens + dense (no-mask) embedding
    pe: torch.Tensor                    # (1, N, C) positional encoding of the tokens
    hw: tuple[int, int]                 # token grid (h, w)
    high_res: tuple[torch.Tensor, torch.Tensor]  # what the upscaling's two matmuls add:
                                        # the transposed convs' biases (+ SAM 2's high-res
                                        # features s1, s0 in block layout)
    first_layer: tuple[torch.Tensor, ...] | None = None   # layer 0: (k t2i, v t2i, q i2t)
    first_layer_base: bool = False      # first_layer holds the base linears' outputs only:
                                        # the LoRA deltas are added on every forward

    def select(self, index: torch.Tensor) -> "FrameState":
        """The frames `index` of a batched state (a training batch)."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        high = tuple(t if t.shape[0] == 1 else pick(t) for t in self.high_res)
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
    dc1, dc2 = decoder.output_upscaling[0], decoder.output_upscaling[3]
    c8 = dc2.out_channels
    add1, add2 = dc1.bias.repeat(4), dc2.bias.repeat(4)    # per (sub-pixel, channel) column
    if high_res is not None and getattr(decoder, "use_high_res_features", False):
        add1 = _block_layout(high_res[1], h, w, 2) + add1
        add2 = _block_layout(high_res[0], h, w, 4).view(b, h * w * 4, 4 * c8) + add2
    else:
        add1, add2 = add1[None, None], add2[None, None]
    state = FrameState(src, pe, (h, w), (add1, add2))
    if first_layer != "none":
        base = first_layer == "base"
        proj = (lambda m, x: getattr(m, "base_layer", m)(x)) if base else _linear
        layer = decoder.transformer.layers[0]
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        with_pe = src + pe
        state.first_layer = (proj(t2i.k_proj, with_pe), proj(t2i.v_proj, src),
                             proj(i2t.q_proj, with_pe))
        state.first_layer_base = base
    return state


def lora_parts(linear: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, float]] | None:
    """(A, B, scaling) of each active adapter of a vanilla PEFT LoRA linear, whose output
    is base(x) + sum of scaling * B A x ([] when its adapters are disabled); None for a
    plain linear or another LoRA variant (DoRA, dropout, LoRA bias, merged), whose own
    forward is then used."""
    if not hasattr(linear, "lora_A"):
        return None
    if linear.disable_adapters:
        return []
    if linear.merged:
        return None
    parts = []
    for name in linear.active_adapters:
        if name not in linear.lora_A:
            continue
        if (linear.use_dora.get(name) or linear.lora_B[name].bias is not None
                or not isinstance(linear.lora_dropout[name], nn.Identity)):
            return None
        parts.append((linear.lora_A[name].weight, linear.lora_B[name].weight,
                      float(linear.scaling[name])))
    return parts


def _add_lora(out: torch.Tensor, parts, x: torch.Tensor) -> torch.Tensor:
    """out + sum of scaling * B A x, the scaling applied inside the rank-r product and the
    sum done by the matmul (addmm). peft scales and adds the rows x out delta in two more
    passes (and as many backward), which on the 4096 image tokens cost more than the LoRA
    products themselves."""
    shape = out.shape
    out2, x2 = out.reshape(-1, shape[-1]), x.reshape(-1, x.shape[-1])
    for a, b, scale in parts:
        out2 = torch.addmm(out2, x2 @ a.t(), b.t(), alpha=scale)
    return out2.view(shape)


def _linear(linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`linear(x)`; a vanilla LoRA linear as its base + `_add_lora` (image-token side)."""
    parts = lora_parts(linear)
    if parts is None:
        return linear(x)
    base = linear.base_layer
    return _add_lora(F.linear(x, base.weight, base.bias), parts, x)


def _block_layout(feat: torch.Tensor, h: int, w: int, factor: int) -> torch.Tensor:
    """(B, C, h*f, w*f) → (B, h*w, f*f*C) with rows (y, x) and columns (sub-pixel, C), the
    sub-pixel order being the one the chained 2x2 transposed convolutions produce."""
    b, c = feat.shape[:2]
    if factor == 2:
        x = feat.view(b, c, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1)       # y x dy dx c
    else:
        x = feat.view(b, c, h, 2, 2, w, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1)  # y x dy dx dy2 dx2 c
    return x.reshape(b, h * w, factor * factor * c)


def fast_predict(decoder: nn.Module, state: FrameState, sparse: torch.Tensor, *,
                 multimask_only: bool = False, blocks: bool = False,
                 on_backward: Callable[[], None] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`predict_masks` of the decoder: (all mask logits B x M x 4h x 4w, IoU B x M,
    object score logits B x 1 or None for a decoder without an object-score token).
    `multimask_only`: only the multimask candidates, what `select(..., True)` keeps (the
    single-mask output is not computed); `blocks`: logits B x M x 16hw in `to_blocks`
    pixel order (for a per-pixel loss: no copy back to image order); `on_backward`: called
    at each stage of the backward pass (a ClickGate's wait: a click preempts training
    there too, not only between the forward's modules)."""
    s = 1 if getattr(decoder, "pred_obj_scores", False) else 0
    weights = [decoder.iou_token.weight, decoder.mask_tokens.weight]
    if s:
        weights.insert(0, decoder.obj_score_token.weight)
    out_tokens = torch.cat(weights, 0)[None].expand(sparse.shape[0], -1, -1)
    tokens = torch.cat((out_tokens, sparse), dim=1)
    hs, keys = _transformer(decoder.transformer, state, tokens, on_backward)
    first = 1 if multimask_only else 0
    mask_tokens = hs[:, s + 1:s + 1 + decoder.num_mask_tokens]
    hyper = torch.stack([decoder.output_hypernetworks_mlps[i](mask_tokens[:, i])
                         for i in range(first, decoder.num_mask_tokens)], dim=1)  # B x M x c8
    masks = _upscaled_masks(decoder, keys, state, hyper, blocks, on_backward)
    iou = decoder.iou_prediction_head(hs[:, s])[:, first:]
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

def _tap(x: torch.Tensor, on_backward: Callable[[], None] | None) -> torch.Tensor:
    """`x`, with `on_backward` called when its gradient is computed (under autograd)."""
    if on_backward is not None and x.requires_grad:
        x.register_hook(lambda _grad: on_backward())
    return x


def _transformer(tf: nn.Module, state: FrameState, point_embedding: torch.Tensor,
                 on_backward: Callable[[], None] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    batch = point_embedding.shape[0]
    keys = state.src if state.src.shape[0] == batch else state.src.expand(batch, -1, -1)
    queries, pe = point_embedding, state.pe
    for i, layer in enumerate(tf.layers):
        first = state.first_layer if i == 0 else None
        queries, keys = _block(layer, queries, keys, point_embedding, pe, first,
                               state.first_layer_base)
        keys = _tap(keys, on_backward)
    q = queries + point_embedding
    k = keys + pe
    attn = tf.final_attn_token_to_image
    out = _tokens_to_image_absorbed(attn, q, k, keys)
    queries = tf.norm_final_attn(queries + attn.out_proj(out))
    return queries, keys


def _with_lora(base: tuple, linears: tuple, keys: torch.Tensor, key_pe: torch.Tensor) -> tuple:
    """Layer 0's image-side projections: the cached base outputs + the LoRA deltas."""
    k = keys + key_pe
    out = []
    for value, linear, x in zip(base, linears, (k, keys, k)):
        parts = lora_parts(linear)
        if parts is None:                   # not vanilla LoRA: the layer's own forward
            out.append(linear(x))
        else:
            out.append(_add_lora(value, parts, x) if parts else value)
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
    q = queries + query_pe
    if first is not None:        # layer 0: the image-side projections prepared per frame
        k_t2i, v_t2i, q_i2t = first
        if first_base:
            k_t2i, v_t2i, q_i2t = _with_lora(first, (t2i.k_proj, t2i.v_proj, i2t.q_proj),
                                             keys, key_pe)
        k = None
        out = _tokens_to_image(t2i, t2i.q_proj(q), k_t2i, v_t2i)
    else:
        k, q_i2t = keys + key_pe, None
        out = _tokens_to_image_absorbed(t2i, q, k, keys)
    queries = layer.norm2(queries + t2i.out_proj(out))
    queries = layer.norm3(queries + layer.mlp(queries))

    q = queries + query_pe
    keys = layer.norm4(_image_to_tokens_absorbed(i2t, k, q_i2t, q, queries, keys))
    return queries, keys


def _weight(linear: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(W, b) with linear(x) = x W^T + b: a plain linear's, or a vanilla LoRA linear's
    W + sum of scaling * B A (differentiable in the adapter); None for other variants."""
    parts = lora_parts(linear)
    if parts is None:
        return None if hasattr(linear, "lora_A") else (linear.weight, linear.bias)
    w = linear.base_layer.weight
    for a, b, scale in parts:
        w = w + scale * (b @ a)
    return w, linear.base_layer.bias


def _tokens_to_image_absorbed(attn: nn.Module, q_in: torch.Tensor, k_in: torch.Tensor,
                              v_in: torch.Tensor) -> torch.Tensor:
    """`attn(q_in, k_in, v_in)` before out_proj, (B, T, internal), where the keys and
    values are the many image tokens (B, N, C) and the queries the few prompt tokens.

    The image tokens are never projected: each head's key projection is folded into its
    queries (q_h W_k,h, a T x C product) and its value projection applied after the
    probabilities (W_v,h (P_h X)). That halves the multiply-adds on the image tokens (two
    N x C x internal projections become products of N with the H*T query rows) and saves
    the projected maps. The key bias adds the same q_h . b_h to a query's every score, which
    the softmax ignores; the value bias passes through (probabilities sum to 1)."""
    wk, wv = _weight(attn.k_proj), _weight(attn.v_proj)
    if wk is None or wv is None:
        return _tokens_to_image(attn, attn.q_proj(q_in), _linear(attn.k_proj, k_in),
                                _linear(attn.v_proj, v_in))
    b, t, _ = q_in.shape
    heads, inner = attn.num_heads, attn.internal_dim
    d = inner // heads
    q = (attn.q_proj(q_in) * d ** -0.5).view(b, t, heads, d)
    qk = torch.einsum("bthc,hcx->bhtx", q, wk[0].view(heads, d, -1)).reshape(b, heads * t, -1)
    probs = torch.softmax(qk @ k_in.transpose(1, 2), dim=-1)               # B (H T) N
    px = (probs @ v_in).view(b, heads, t, -1)                               # B H T C
    out = torch.einsum("bhtx,hcx->bthc", px, wv[0].view(heads, d, -1)).reshape(b, t, inner)
    return out if wv[1] is None else out + wv[1]


def _image_to_tokens_absorbed(attn: nn.Module, q_in: torch.Tensor | None,
                              q_proj: torch.Tensor | None, k_in: torch.Tensor,
                              v_in: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """residual + `attn(q_in, k_in, v_in)` (B, N, C): the many image tokens attend to the
    few prompt tokens. Queries: the image tokens `q_in`, or their projection `q_proj`
    when it is prepared. As in `_tokens_to_image_absorbed`, each head's query projection
    is folded into its keys (k_h W_q,h) and the output projection into its values
    (v_h W_o,h^T), so no N x internal map is made; the query bias becomes a per-key
    score offset (k_h . b_q,h), the output bias is added at the end."""
    wo = _weight(attn.out_proj)
    wq = _weight(attn.q_proj) if q_proj is None else None
    if wo is None or (q_proj is None and wq is None):
        if q_proj is None:
            q_proj = _linear(attn.q_proj, q_in)
        out = _image_to_tokens(attn, q_proj, attn.k_proj(k_in), attn.v_proj(v_in))
        return residual + _linear(attn.out_proj, out)
    b, t, _ = k_in.shape
    heads, inner = attn.num_heads, attn.internal_dim
    d = inner // heads
    n = residual.shape[1]
    k = (attn.k_proj(k_in) * d ** -0.5).view(b, t, heads, d)
    v = attn.v_proj(v_in).view(b, t, heads, d)
    if q_proj is not None:
        k_bd = _diag_heads(k.view(b, t, inner), heads).reshape(b, heads * t, inner)
        scores = k_bd @ q_proj.transpose(1, 2)                              # B (H T) N
    else:
        kq = torch.einsum("bthc,hcx->bhtx", k, wq[0].view(heads, d, -1)).reshape(b, heads * t, -1)
        if wq[1] is None:
            scores = kq @ q_in.transpose(1, 2)
        else:
            offset = torch.einsum("bthc,hc->bht", k, wq[1].view(heads, d)).reshape(b, heads * t, 1)
            scores = torch.baddbmm(offset, kq, q_in.transpose(1, 2))
    probs = torch.softmax(scores.view(b, heads, t, n), dim=2).view(b, heads * t, n)
    vo = torch.einsum("bthc,xhc->bhtx", v, wo[0].view(-1, heads, d)).reshape(b, heads * t, -1)
    out = torch.baddbmm(residual, probs.transpose(1, 2), vo)
    return out if wo[1] is None else out + wo[1]


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
                    hyper: torch.Tensor, blocks: bool = False,
                    on_backward: Callable[[], None] | None = None) -> torch.Tensor:
    """output_upscaling (+ high-res features) and the hypernetwork product, as matmuls; the
    biases and high-res features prepared in `state` ride in the matmuls (baddbmm).
    B x M x 4h x 4w logits, or with `blocks` B x M x 16hw in block pixel order."""
    dc1, ln1, act1, dc2, act2 = decoder.output_upscaling
    b, n, _ = keys.shape
    c4, c8 = dc1.out_channels, dc2.out_channels
    add1, add2 = state.high_res
    x = torch.baddbmm(add1, keys, _convt_matrix(dc1).expand(b, -1, -1))      # B N (dy dx c4)
    x = _tap(act1(F.layer_norm(x.view(b, n * 4, c4), (c4,), ln1.weight, ln1.bias, ln1.eps)),
             on_backward)
    x = torch.baddbmm(add2, x, _convt_matrix(dc2).expand(b, -1, -1))         # B (N 4) (4 c8)
    x = _tap(act2(x), on_backward)
    masks = x.view(b, n * 16, c8) @ hyper.transpose(1, 2)                    # B (N 16) M
    if blocks:                      # a view: (B, M, N 16) the other way round costs a copy
        return masks.transpose(1, 2)            # of the 65536 x c8 gradient in backward
    h, w = state.hw
    m = hyper.shape[1]
    masks = masks.view(b, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(b, m, 4 * h, 4 * w)


def to_blocks(maps: torch.Tensor) -> torch.Tensor:
    """B x K x 4h x 4w maps (e.g. a target mask) → B x K x 16hw in the pixel order of
    `fast_predict(..., blocks=True)`."""
    b, k, hh, ww = maps.shape
    h, w = hh // 4, ww // 4
    return maps.view(b, k, h, 2, 2, w, 2, 2).permute(0, 1, 2, 5, 3, 6, 4, 7).reshape(b, k, -1)


def _convt_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """A 2x2 stride-2 ConvTranspose2d's weight (Cin, Cout, 2, 2) as Cin x (dy dx Cout)."""
    w = conv.weight
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
