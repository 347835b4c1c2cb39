"""A simulated annotator for issue 15's quality benchmark: how many clicks a user needs per
frame to bring SAM 2's tracked mask to IoU >= 0.9 against the ground truth, with and
without LIT-LoRA.

The click rule is the standard one of interactive-segmentation evaluation (RITM, SAM):
the user looks at the error regions (missed object pixels and wrongly included ones),
picks the largest connected one and clicks the pixel inside it farthest from its
boundary: a positive point in a missed region, a negative one in a false-positive region.

The session follows the GUI (src/gui/sam/controller.py): on the first frame the user clicks
the object (decoder only, from the cached embedding) until the mask is good and keeps it,
which starts the track (`MaskTracker.add_mask`); on a tracked frame whose mask is not good
enough, the points go through `MaskTracker.add_prompt` (as `TrackSession.correct` does:
the frame becomes a conditioning frame and tracking continues from it), and the corrected
frame becomes a LIT-LoRA sample (`correction_arrays`, as `LitLora.add_correction`), whose
target is the mask the correction gave (what the user accepted). After the correction
frames the user pauses: one update trains the adapter and tracking uses the adapted
decoder on the evaluation frames.

Ground truth (`demo_truth`): one mover of the demo video (src/data/demo.py), its filled
outline minus the pixels of the objects drawn over it — the part SAM can see. An image
segmenter cannot see behind an occluder, and the simulated user would otherwise be told to
click on the occluding object. On the frames the benchmark uses by default (the first
circle, frames 0-20) nothing occludes it, so the truth is exactly the demo project's
stored polygon there. Frames where the object is less visible than
`src.data.demo.MIN_VISIBLE` (the demo stores no annotation) have no truth (None): they
are tracked through but neither corrected nor measured.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from src.data.demo import MIN_VISIBLE, render
from src.training.learning.updater import EpochsOutcome, UpdateContext
from src.training.sam.engine import FrameEmbedding, SamEngine
from src.training.sam.lit_lora import (LitLoraSettings, adapted_copy, correction_arrays,
                                       train_adapter)
from src.training.sam.prompts import PointPrompt, Prompt
from src.training.sam.polygon import mask_iou
from src.training.sam.tracker import MaskTracker, TrackedMask

TARGET_IOU = 0.9
MAX_CLICKS = 10
DEMO_OBJECT = 2          # the first 'circle' of the demo (movers keep their drawing order)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """`mask_iou`, 1.0 when both masks are empty (nothing for the user to fix)."""
    return mask_iou(a.astype(bool), b.astype(bool), empty=1.0)


def next_click(pred: np.ndarray, truth: np.ndarray) -> PointPrompt | None:
    """The simulated user's next point: inside the largest connected error region, at its
    pixel farthest from the region's boundary (the frame's edge counts as boundary);
    positive in a missed region, negative in a false-positive one. None: no error."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    best: tuple[int, bool, np.ndarray] | None = None
    for positive, error in ((True, truth & ~pred), (False, pred & ~truth)):
        region, area = _largest_region(error)
        if region is not None and (best is None or area > best[0]):
            best = (area, positive, region)
    if best is None:
        return None
    _, positive, region = best
    padded = np.pad(region, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return PointPrompt(float(x), float(y), positive)


def _largest_region(error: np.ndarray) -> tuple[np.ndarray | None, int]:
    """(the largest 8-connected component of `error`, its area); (None, 0) when empty."""
    if not error.any():
        return None, 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8),
                                                               connectivity=8)
    k = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    return labels == k, int(stats[k, cv2.CC_STAT_AREA])


@dataclass
class FrameResult:
    """One frame of the simulated session: the user's clicks and the masks' IoU."""
    clicks: int
    iou_before: float                 # the mask the user was shown (a tracked proposal)
    iou_after: float
    prompt: Prompt
    mask: np.ndarray
    tracked: TrackedMask | None = None     # the last correction's output (tracker mode)

    def reached(self, target: float = TARGET_IOU) -> bool:
        return self.iou_after >= target


Apply = Callable[[Prompt], tuple[np.ndarray, TrackedMask | None]]


def annotate(engine: SamEngine, emb: FrameEmbedding, truth: np.ndarray, *,
             first: Prompt | None = None, start: np.ndarray | None = None,
             tracker: MaskTracker | None = None, frame_index: int = 0,
             decoder=None, target_iou: float = TARGET_IOU,
             max_clicks: int = MAX_CLICKS) -> FrameResult:
    """The user adds points one at a time until IoU >= `target_iou` or `max_clicks`.

    `start`: the mask shown before any click (a tracked proposal; None: nothing). `first`:
    the user's first points (each one a click; then `next_click`). Without `tracker` each
    click decodes from the cached embedding (`engine.segment`, the best candidate, as the
    GUI shows it; `decoder`: an adapted one); with it, each click corrects tracked frame
    `frame_index` (`tracker.add_prompt`, the growing prompt of that frame)."""
    apply = (_tracker_clicks(tracker, frame_index, emb) if tracker is not None
             else _decoder_clicks(engine, emb, decoder))
    mask = start.astype(bool) if start is not None else np.zeros(truth.shape, bool)
    before = score = iou(mask, truth)
    prompt, clicks, tracked = Prompt(), 0, None
    pending = list(first.points) if first is not None else []
    while score < target_iou and clicks < max_clicks:
        point = pending.pop(0) if pending else next_click(mask, truth)
        if point is None:
            break
        prompt = prompt.with_point(point.x, point.y, point.positive)
        mask, tracked = apply(prompt)
        clicks += 1
        score = iou(mask, truth)
    return FrameResult(clicks, before, score, prompt, mask, tracked)


def _decoder_clicks(engine: SamEngine, emb: FrameEmbedding, decoder) -> Apply:
    def apply(prompt: Prompt):
        return engine.segment(emb, prompt, decoder=decoder)[0].mask, None
    return apply


def _tracker_clicks(tracker: MaskTracker, frame_index: int, emb: FrameEmbedding) -> Apply:
    def apply(prompt: Prompt):
        tracked = tracker.add_prompt(frame_index, emb, prompt)
        return tracked.mask, tracked
    return apply


# -- the session ------------------------------------------------------------------------

@dataclass
class QualityRun:
    """One simulated session: start frame, correction frames, update, evaluation frames."""
    lit_lora: bool
    start: FrameResult
    corrections: dict[int, FrameResult] = field(default_factory=dict)
    evaluation: dict[int, FrameResult] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)      # frames without truth
    samples: int = 0
    update_s: float = 0.0
    outcome: EpochsOutcome | None = None
    adapted: bool = False                                   # the tracker used an adapter
    target_iou: float = TARGET_IOU

    @property
    def proposal_iou(self) -> float:
        """Mean IoU of the tracked proposals on the evaluation frames."""
        return _mean([r.iou_before for r in self.evaluation.values()])

    @property
    def clicks_per_frame(self) -> float:
        return _mean([r.clicks for r in self.evaluation.values()])

    @property
    def reached(self) -> int:
        """Evaluation frames the user brought to the target."""
        return sum(r.reached(self.target_iou) for r in self.evaluation.values())


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def start_frame(engine: SamEngine, emb: FrameEmbedding, truth: np.ndarray, *,
                target_iou: float = TARGET_IOU, max_clicks: int = MAX_CLICKS) -> FrameResult:
    """Frame 0: the user clicks the object (its centre-most pixel first) until it is good."""
    return annotate(engine, emb, truth, target_iou=target_iou, max_clicks=max_clicks)


def quality_run(engine: SamEngine, embs: list[FrameEmbedding],
                truths: list[np.ndarray | None], *, correct: int = 10, evaluate: int = 10,
                lit_lora: bool, settings: LitLoraSettings | None = None,
                budget_s: float | None = 20.0, target_iou: float = TARGET_IOU,
                max_clicks: int = MAX_CLICKS, start: FrameResult | None = None) -> QualityRun:
    """Frame 0 starts the track (`start`, or clicked now); frames 1..`correct` are tracked
    and corrected where IoU < target (samples when `lit_lora`); then one update; frames
    after that up to `correct + evaluate` are measured: the proposal's IoU and the clicks
    that bring it to the target. Deterministic for one engine and thread count."""
    total = 1 + correct + evaluate
    if len(embs) < total or len(truths) < total or truths[0] is None:
        raise ValueError(f"quality_run needs {total} frames with a truth on frame 0, got "
                         f"{len(embs)} embeddings and {len(truths)} truths")
    clicking = {"target_iou": target_iou, "max_clicks": max_clicks}
    if start is None:
        start = start_frame(engine, embs[0], truths[0], **clicking)
    run = QualityRun(lit_lora, start, target_iou=target_iou)
    tracker = MaskTracker(engine, total)
    tracker.add_mask(0, embs[0], start.mask)
    arrays = []
    for i in range(1, correct + 1):
        fixed = _track_and_fix(engine, tracker, embs[i], truths[i], i, run, clicking)
        if fixed is None:
            continue
        run.corrections[i] = fixed
        if lit_lora and fixed.tracked is not None:
            arrays.append(correction_arrays(engine, tracker, fixed.prompt, fixed.tracked,
                                            embs[i].letterbox))
    run.samples = len(arrays)
    if arrays:
        _update(engine, tracker, arrays, settings or LitLoraSettings(), budget_s, run)
    for i in range(correct + 1, total):
        fixed = _track_and_fix(engine, tracker, embs[i], truths[i], i, run, clicking)
        if fixed is not None:
            run.evaluation[i] = fixed
    return run


def _track_and_fix(engine, tracker: MaskTracker, emb: FrameEmbedding,
                   truth: np.ndarray | None, index: int, run: QualityRun,
                   clicking: dict) -> FrameResult | None:
    """Propagate to frame `index`; the user corrects the proposal when it is not good."""
    proposal = tracker.step(index, emb)
    if truth is None:
        run.skipped.append(index)
        return None
    return annotate(engine, emb, truth, start=proposal.mask, tracker=tracker,
                    frame_index=index, **clicking)


def _update(engine: SamEngine, tracker: MaskTracker, arrays: list[dict],
            settings: LitLoraSettings, budget_s: float | None, run: QualityRun) -> None:
    """The user pauses: one LIT-LoRA update; tracking goes on with the adapted decoder."""
    ctx = UpdateContext(budget_s, threading.Event(), None)
    began = time.perf_counter()
    state, run.outcome = train_adapter(engine, engine.base_decoder, arrays, settings, ctx)
    run.update_s = time.perf_counter() - began
    if state is not None:
        tracker.decoder = adapted_copy(engine.base_decoder, settings, state)
        run.adapted = True


def compare(engine: SamEngine, embs: list[FrameEmbedding], truths: list[np.ndarray | None],
            **kwargs) -> tuple[QualityRun, QualityRun]:
    """(without LIT-LoRA, with it), from the same first frame."""
    clicking = {k: kwargs[k] for k in ("target_iou", "max_clicks") if k in kwargs}
    start = start_frame(engine, embs[0], truths[0], **clicking)
    return (quality_run(engine, embs, truths, lit_lora=False, start=start, **kwargs),
            quality_run(engine, embs, truths, lit_lora=True, start=start, **kwargs))


# -- ground truth -----------------------------------------------------------------------

def demo_truth(count: int, *, object_index: int = DEMO_OBJECT, seed: int = 0
               ) -> tuple[list[np.ndarray], list[np.ndarray | None], list[float]]:
    """The demo video's first `count` frames (BGR), the object's visible mask on each
    (None when less visible than MIN_VISIBLE or absent) and its visible fraction."""
    images, truths, visible = [], [], []
    for _, (image, objects) in zip(range(count), render(seed)):
        images.append(image)
        if object_index >= len(objects) or objects[object_index][2] < MIN_VISIBLE:
            truths.append(None)
            visible.append(objects[object_index][2] if object_index < len(objects) else 0.0)
            continue
        truths.append(_visible_mask(image.shape[:2], objects, object_index))
        visible.append(objects[object_index][2])
    return images, truths, visible


def _visible_mask(shape: tuple[int, int], objects: list, index: int) -> np.ndarray:
    """The object's filled outline minus the objects drawn after (over) it."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(objects[index][1]).astype(np.int32)], 1)
    for _, outline, _ in objects[index + 1:]:
        cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 0)
    return mask.astype(bool)
