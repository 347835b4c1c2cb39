"""The fast per-click path (prepared decoder state, `fast_decoder`, cropped upsampling) and the
fast LIT-LoRA trainer give what the reference paths give, on untrained SAM 2 tiny and
MobileSAM at 128 px: the same logits up to float rounding, the same masks, the same loss
and gradients; an update through the fast trainer leaves the base decoder bit-identical."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from peft.utils import get_peft_model_state_dict

from src.training.learning.early_stop import StopRules
from src.training.learning.updater import UpdateContext
from src.training.sam import fast_decoder, lit_lora
from src.training.sam.engine import SamEngine
from src.training.sam.prompts import PointPrompt, Prompt
from src.training.sam.weights import find_weights
from tests.training.sam.conftest import TEST_IMGSZ, square_frame

PROMPTS = [Prompt([PointPrompt(20, 28)]),
           Prompt([PointPrompt(20, 28), PointPrompt(70, 10, False)]),
           Prompt([PointPrompt(40, 30)], box=[10, 16, 60, 50])]


@pytest.fixture(scope="module")
def mobile_engine() -> SamEngine:
    torch.manual_seed(2)
    return SamEngine.load(find_weights("mobile_sam", Path("/nonexistent"), untrained=True),
                          image_size=TEST_IMGSZ)


def _lora_decoder(engine: SamEngine) -> torch.nn.Module:
    """An adapted copy whose LoRA B matrices are not zero (so the adapter changes outputs)."""
    torch.manual_seed(3)
    decoder = lit_lora.adapted_copy(engine.base_decoder, lit_lora.LitLoraSettings())
    with torch.no_grad():
        for name, p in decoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return decoder


def _reference_logits(engine, emb, prompt, multimask, decoder=None):
    points, labels = engine.prompt_tensors(prompt, emb.letterbox)
    with torch.inference_mode():
        return engine.decode_logits(*engine.image_inputs(emb), points, labels, multimask,
                                    decoder)


@pytest.mark.parametrize("which", ["sam2", "mobile"])
def test_fast_decoder_gives_the_reference_logits(which, sam2_engine, mobile_engine):
    engine = sam2_engine if which == "sam2" else mobile_engine
    adapted_decoder = _lora_decoder(engine)
    embs = {i: engine.embed(square_frame(i)) for i in (0, 5)}
    # the second frame must not reuse the first's prepared state
    for frame, decoder in ((0, None), (0, adapted_decoder), (5, None)):
        emb = embs[frame]
        for prompt in PROMPTS:
            for multimask in (True, False):
                ref = _reference_logits(engine, emb, prompt, multimask, decoder)
                points, labels = engine.prompt_tensors(prompt, emb.letterbox)
                fast = engine.decode_fast(emb, points, labels, multimask, decoder)
                assert fast[0].shape == ref[0].shape
                assert (fast[0] - ref[0]).abs().max() < 1e-4
                assert torch.allclose(fast[1], ref[1], atol=1e-5)
                if ref[2] is not None:
                    assert torch.allclose(fast[2], ref[2], atol=1e-4)
    adapted = _reference_logits(engine, emb, PROMPTS[0], True, adapted_decoder)[0]
    base = _reference_logits(engine, emb, PROMPTS[0], True)[0]
    assert (adapted - base).abs().max() > 1e-3        # the adapter really changes the output


def test_another_lora_variant_goes_through_its_own_forward(sam2_engine):
    """A LoRA with dropout is not folded into the projections (`lora_parts` refuses it):
    the fast path then calls the layers' own forward, and in eval mode (dropout off) gives
    the reference logits, adapter included."""
    settings = dataclasses.replace(lit_lora.LitLoraSettings(), dropout=0.1)
    torch.manual_seed(4)
    decoder = lit_lora.adapted_copy(sam2_engine.base_decoder, settings)
    with torch.no_grad():
        for name, p in decoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    k_proj = decoder.transformer.final_attn_token_to_image.k_proj
    assert fast_decoder.lora_parts(k_proj) is None and fast_decoder._weight(k_proj) is None
    emb = sam2_engine.embed(square_frame(1))
    for multimask in (True, False):
        ref = _reference_logits(sam2_engine, emb, PROMPTS[1], multimask, decoder)
        points, labels = sam2_engine.prompt_tensors(PROMPTS[1], emb.letterbox)
        fast = sam2_engine.decode_fast(emb, points, labels, multimask, decoder)
        assert (fast[0] - ref[0]).abs().max() < 1e-4
        assert torch.allclose(fast[1], ref[1], atol=1e-5)
        base = _reference_logits(sam2_engine, emb, PROMPTS[1], multimask)[0]
        assert (ref[0] - base).abs().max() > 1e-3     # the adapter is in the comparison


def test_block_order_logits_are_the_image_logits_permuted(sam2_engine):
    """`blocks=True` (the trainer's loss layout) gives the image-order logits in
    `to_blocks` order, and the multimask-only output is the multimask candidates."""
    emb = sam2_engine.embed(square_frame(2))
    state = sam2_engine.decoder_state(emb)
    points, labels = sam2_engine.prompt_tensors(PROMPTS[0], emb.letterbox)
    dec = sam2_engine.base_decoder
    with torch.no_grad():
        sparse, _ = sam2_engine.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        image, iou, _ = fast_decoder.fast_predict(dec, state, sparse)
        blocks, iou_m, _ = fast_decoder.fast_predict(dec, state, sparse, multimask_only=True,
                                                     blocks=True)
    assert image.shape[1] == 4 and blocks.shape[1] == 3
    assert torch.allclose(fast_decoder.to_blocks(image[:, 1:]), blocks, atol=1e-5)
    assert torch.allclose(iou[:, 1:], iou_m)
    ramp = torch.arange(image[0, :1].numel(), dtype=torch.float32).view(image[:, :1].shape)
    assert not torch.equal(fast_decoder.to_blocks(ramp).flatten(), ramp.flatten())


def _agree(fast_mask, ref_mask, ref_values, threshold) -> None:
    """Same masks, except where the reference value sits on the threshold (float rounding)."""
    differ = fast_mask != ref_mask
    assert np.all(np.abs(ref_values[differ] - threshold) < 1e-4)
    assert differ.mean() < 1e-3


@pytest.mark.parametrize("threshold", [-0.15, 0.0, 0.05, 10.0])
def test_cropped_upsampling_gives_the_reference_masks(sam2_engine, threshold, monkeypatch):
    monkeypatch.setattr(sam2_engine.model, "mask_threshold", threshold)
    emb = sam2_engine.embed(square_frame(3))
    logits = _reference_logits(sam2_engine, emb, PROMPTS[1], True)[0][0]
    small = torch.full_like(logits[0], -5.0)
    small[10:14, 20:23] = 1.0                        # a small object: a cropped window
    for mask_logits in [*logits, small]:
        ref = sam2_engine.to_original(mask_logits[None], emb.letterbox)[0]
        values = _upsampled(sam2_engine, mask_logits, emb.letterbox)
        fast = sam2_engine.to_original_cropped(mask_logits, emb.letterbox)
        _agree(fast, ref, values, threshold)
    assert not sam2_engine.to_original_cropped(small - 20, emb.letterbox).any()


def _upsampled(engine, logits, box) -> np.ndarray:
    up = torch.nn.functional.interpolate(logits[None, None], size=(engine.image_size,) * 2,
                                         mode="bilinear", align_corners=False)
    ih, iw = box.inner
    up = torch.nn.functional.interpolate(up[..., :ih, :iw], size=(box.height, box.width),
                                         mode="bilinear", align_corners=False)
    return up[0, 0].numpy()


def test_segment_fast_and_reference_candidates_agree(present_engine):
    emb = present_engine.embed(square_frame(2))
    for prompt in PROMPTS:
        fast = present_engine.segment(emb, prompt)
        ref = present_engine.segment(emb, prompt, fast=False)
        assert [c.iou for c in fast] == pytest.approx([c.iou for c in ref], abs=1e-5)
        for f, r in zip(fast, ref):
            assert f.mask.shape == r.mask.shape == (64, 96)
            assert (f.mask != r.mask).mean() < 1e-3
        assert any(c.mask.any() for c in ref)        # the comparison is not of empty masks


def _arrays(engine: SamEngine, n: int) -> list[dict]:
    """LIT-LoRA samples as correction_arrays stores them, from random decoder inputs."""
    rng = np.random.default_rng(0)
    side = TEST_IMGSZ // 16
    out = []
    for i in range(n):
        yy, xx = np.mgrid[:side * 4, :side * 4]
        target = (xx - 8 - i) ** 2 + (yy - 16) ** 2 < 36
        k = 1 + i % 3                               # different point counts: padded batches
        out.append({"embed": rng.standard_normal((1, 256, side, side)).astype(np.float16),
                    "high_res_0": rng.standard_normal((1, 32, side * 4, side * 4)).astype(
                        np.float16),
                    "high_res_1": rng.standard_normal((1, 64, side * 2, side * 2)).astype(
                        np.float16),
                    "points": (rng.random((1, k, 2)) * TEST_IMGSZ).astype(np.float32),
                    "labels": np.ones((1, k), np.int32), "target": target[None, None]})
    return out


def test_fast_trainer_gives_the_reference_loss_and_gradients(sam2_engine):
    arrays = _arrays(sam2_engine, 5)
    settings = lit_lora.LitLoraSettings()
    decoder = _lora_decoder(sam2_engine)
    ref = lit_lora._Trainer(sam2_engine, decoder, arrays, settings)
    fast = lit_lora._FastTrainer(sam2_engine, decoder, arrays, settings)
    params = [p for p in decoder.parameters() if p.requires_grad]
    for indices in ([0, 1, 2, 3], [4]):
        for prompted in (False, True):
            loss_ref = ref._loss(ref._batch(indices), prompted=prompted)
            loss_fast = fast._loss(fast._batch(indices), prompted=prompted)
            assert loss_fast.item() == pytest.approx(loss_ref.item(), rel=1e-5)
            grads_ref = torch.autograd.grad(loss_ref, params)
            # the fast path does not compute the single-mask output the loss ignores
            grads_fast = torch.autograd.grad(loss_fast, params, allow_unused=True,
                                             materialize_grads=True)
            scale = max(g.abs().max() for g in grads_ref)
            assert scale > 0
            assert max((a - b).abs().max() for a, b in zip(grads_ref, grads_fast)) < 1e-4 * scale


@pytest.mark.slow
def test_fast_update_trains_only_the_adapter(sam2_engine):
    before = {k: v.clone() for k, v in sam2_engine.base_decoder.state_dict().items()}
    settings = dataclasses.replace(lit_lora.LitLoraSettings(), rules=StopRules(
        patience=2, good_enough=0.6, max_epochs=3))
    ctx = UpdateContext(60, threading.Event(), None)
    state, outcome = lit_lora.train_adapter(sam2_engine, sam2_engine.base_decoder,
                                            _arrays(sam2_engine, 5), settings, ctx)
    assert outcome.epochs >= 1 and state is not None
    assert any(v.abs().max() > 0 for k, v in state.items() if "lora_B" in k)   # it learned
    after = sam2_engine.base_decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_background_encoding_waits_while_a_click_decodes(sam2_engine):
    """The encoder stops at its next module while a click holds the gate, resumes after
    it, and gives the embedding it gives undisturbed."""
    image = square_frame(4)
    expected = sam2_engine.embed(image)
    got: list = []
    worker = threading.Thread(target=lambda: got.append(sam2_engine.embed(image)))
    gate = sam2_engine.gate
    with gate.click():
        worker.start()
        assert gate.waiting.wait(30)                 # the encoder reached the gate
        assert worker.is_alive() and not got
        sam2_engine.segment(expected, PROMPTS[0])    # a click in the holder's thread runs
    worker.join(60)
    assert not worker.is_alive() and gate.waits >= 1
    assert all(torch.equal(a, b) for a, b in zip(got[0].feats, expected.feats))


def test_training_backward_waits_while_a_click_decodes(sam2_engine):
    """The fast trainer's backward pass stops at the click gate (not only its forward's
    modules): a click in another thread gets the cores between backward stages."""
    arrays = _arrays(sam2_engine, 2)
    decoder = lit_lora.adapted_copy(sam2_engine.base_decoder, lit_lora.LitLoraSettings())
    trainer = lit_lora._FastTrainer(sam2_engine, decoder, arrays, lit_lora.LitLoraSettings())
    loss = trainer._loss(trainer._batch([0]), prompted=True)      # forward: gate open
    gate, waits = sam2_engine.gate, sam2_engine.gate.waits
    done = threading.Event()
    worker = threading.Thread(target=lambda: (loss.backward(), done.set()))
    with gate.click():
        worker.start()
        assert gate.waiting.wait(30)                 # the backward reached the gate
        assert not done.is_set()
    worker.join(60)
    assert done.is_set() and gate.waits > waits
    assert any(p.grad is not None and p.grad.abs().max() > 0
               for p in decoder.parameters() if p.requires_grad)


def test_fast_epoch_makes_the_reference_steps(sam2_engine):
    """One epoch of each trainer from the same adapter and seed: the same split, the same
    accumulated gradients, hence (nearly) the same adapter afterwards."""
    arrays = _arrays(sam2_engine, 6)
    settings = dataclasses.replace(lit_lora.LitLoraSettings(), lr=1e-2)
    start = _lora_decoder(sam2_engine)
    states = []
    for cls in (lit_lora._Trainer, lit_lora._FastTrainer):
        decoder = lit_lora.adapted_copy(sam2_engine.base_decoder, settings)
        decoder.load_state_dict(start.state_dict())
        trainer = cls(sam2_engine, decoder, arrays, settings, seed=5)
        trainer.train_epoch(0)
        states.append((trainer.snapshot(), trainer.val_idx, trainer.validate(0)))
    (ref, ref_val, ref_iou), (fast, fast_val, fast_iou) = states
    assert ref_val == fast_val and fast_iou == pytest.approx(ref_iou, abs=1e-3)
    initial = get_peft_model_state_dict(start)
    moved = max((ref[k] - initial[k]).abs().max() for k in ref)
    assert moved > 1e-3                                  # the epoch changed the adapter
    # AdamW normalises each step: rounding-level gradient differences move a parameter
    # by a small fraction of lr at most, a different gradient by about lr
    assert max((ref[k] - fast[k]).abs().max() for k in ref) < 0.02 * moved
