"""LIT-LoRA on an untrained SAM 2 tiny (128 px): corrections become samples, an update runs
in the background and changes the output only through the adapter (base decoder tensors
bit-identical), the early-stopping rules drive it, the adapter is saved, reloaded, discarded."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from src.training.learning.early_stop import GIVE_UP, STOP_GOOD, StopRules
from src.training.sam import lit_lora as lit_module
from src.training.sam.embeddings import EmbeddingCache
from src.training.sam.lit_lora import LitLora, LitLoraSettings
from src.training.sam.prompts import PointPrompt, Prompt
from src.training.sam.session import TrackSession
from tests.training.sam.conftest import VIDEO_FRAMES, square_box, square_frame, square_mask

FAST = LitLoraSettings(rules=StopRules(patience=2, good_enough=0.6, max_epochs=3), budget_s=60)


def _centre(i: int) -> Prompt:
    x1, y1, x2, y2 = square_box(i)
    return Prompt([PointPrompt((x1 + x2) / 2, (y1 + y2) / 2), PointPrompt(2, 2, False)])


@pytest.fixture(scope="module")
def corrected(present_engine, shared_embeddings, tmp_path_factory):
    """A session tracked over the video with corrections on frames 2, 4, 6 (learning on)."""
    folder = tmp_path_factory.mktemp("lit")
    lit = LitLora(present_engine, folder / "object1", base_ref="sam2_t:untrained",
                  settings=FAST)
    cache = EmbeddingCache(present_engine, shared_embeddings)
    session = TrackSession(cache, 1, VIDEO_FRAMES, square_frame, on_correction=lit.add_correction)
    session.start_from_mask(0, square_mask(0))
    for frame in (2, 4, 6):
        session.propagate(frame)
        session.correct(frame, _centre(frame))
    session.propagate(7)
    yield session, lit
    lit.close()


def _base_state(engine) -> dict:
    return {k: v.clone() for k, v in engine.base_decoder.state_dict().items()}


@pytest.mark.slow
def test_corrections_become_samples(corrected):
    session, lit = corrected
    assert lit.samples.ids() == ["frame-2", "frame-4", "frame-6"]
    sample = lit.samples.get("frame-4")
    assert sample.meta["frame_index"] == 4 and len(sample.meta["prompt"]["points"]) == 2
    emb = session.embedding(4)
    assert sample.arrays["embed"].shape == tuple(emb.feats[-1].shape)
    assert sample.arrays["target"].shape[-1] == emb.feats[-1].shape[-1] * 4
    assert sample.arrays["target"].any()


@pytest.mark.slow
def test_update_runs_in_background_and_changes_output_only_through_the_adapter(
        corrected, present_engine):
    session, lit = corrected
    before = _base_state(present_engine)
    emb = session.embedding(7)
    base_view = session.tracker.preview(7, emb, None)
    assert lit.decoder is None
    assert lit.request_update() == "started"
    assert lit.update.wait(120)
    result = lit.update.last_result
    assert result.status == "finished" and lit.last_summary.samples == 3
    assert lit.decoder is not None and lit.adapters.exists()
    after = present_engine.base_decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)      # bit-identical base
    assert present_engine.decoder is present_engine.base_decoder
    again = session.tracker.preview(7, emb, None)
    assert (again.mask == base_view.mask).all() and again.confidence == base_view.confidence
    adapted = session.tracker.preview(7, emb, lit.decoder)
    assert (adapted.mask != base_view.mask).any() or adapted.confidence != base_view.confidence
    # zeroing the adapter's B matrices gives back the base decoder's output exactly
    neutral = lit_module.adapted_copy(present_engine.base_decoder, lit.settings,
                                      {k: torch.zeros_like(v) if "lora_B" in k else v
                                       for k, v in lit._current_state().items()})
    zero = session.tracker.preview(7, emb, neutral)
    assert (zero.mask == base_view.mask).all()
    assert zero.confidence == pytest.approx(base_view.confidence, abs=1e-6)


@pytest.mark.slow
def test_adapter_is_reloaded_and_discarded(corrected, present_engine):
    session, lit = corrected
    if lit.decoder is None:
        lit.request_update()
        lit.update.wait(120)
    emb = session.embedding(7)
    in_use = session.tracker.preview(7, emb, lit.decoder)
    reopened = LitLora(present_engine, lit.folder, base_ref="sam2_t:untrained", settings=FAST)
    assert reopened.decoder is not None
    assert reopened.adapters.meta().samples == 3
    again = session.tracker.preview(7, emb, reopened.decoder)
    assert (again.mask == in_use.mask).all()
    assert again.confidence == pytest.approx(in_use.confidence, abs=1e-5)
    assert reopened.discard() and reopened.decoder is None and not reopened.adapters.exists()
    assert LitLora(present_engine, lit.folder, base_ref="x", settings=FAST).decoder is None


def test_defaults_are_the_issue_s_design():
    s = LitLoraSettings()
    assert (s.rank, s.alpha, s.lr, s.train_share, s.focal_weight, s.dice_weight) == \
        (8, 16, 1e-4, 0.8, 20.0, 1.0)
    assert s.rules == StopRules.lit_lora()


@pytest.mark.slow
@pytest.mark.parametrize("curve, epochs, reason", [
    ([0.0] * 20, 10, GIVE_UP),                       # still 0 after 10 epochs
    ([0.1] * 60, 50, GIVE_UP),                       # below 0.2 after 50 epochs
    ([0.5, 0.7] + [0.65] * 30, 12, STOP_GOOD),       # best 0.7 at epoch 1, 10 without better
])
def test_early_stopping_on_scripted_validation_curves(corrected, present_engine, monkeypatch,
                                                      curve, epochs, reason):
    _, lit = corrected
    arrays = [lit.samples.get(i).arrays for i in lit.samples.ids()]
    monkeypatch.setattr(lit_module._Trainer, "validate", lambda self, epoch: curve[epoch])
    for trainer in (lit_module._Trainer, lit_module._FastTrainer):   # scripted: no training
        monkeypatch.setattr(trainer, "train_epoch", lambda self, epoch: 0.0)
    from src.training.learning.updater import UpdateContext
    import threading
    ctx = UpdateContext(None, threading.Event(), None)
    state, outcome = lit_module.train_adapter(present_engine, present_engine.base_decoder,
                                              arrays, dataclasses.replace(LitLoraSettings(),
                                                                          budget_s=None), ctx)
    assert (outcome.epochs, outcome.reason) == (epochs, reason)
    assert outcome.best_metric == max(curve[:epochs])
