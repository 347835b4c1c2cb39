"""Segment Anything timings on this machine (CPU): per-click latency from a cached embedding
(target <= 50 ms) on the reference path (ultralytics' decoder forward, every candidate
upsampled) and the fast path (prepared frame state + `fast_decoder`, best candidate upsampled
around its pixels) side by side, at 1 and 2 torch threads, for SAM 2 tiny and MobileSAM; a
click while the encoder runs in the background (with and without the click gate); embedding
time per frame per model; and a LIT-LoRA update on 10 corrected frames (target <= 20 s),
reference trainer vs fast trainer. Wall and CPU time; `uptime` load beside each figure
(other work on the machine slows the wall times). Timings do not depend on the
weights, so without weights the architectures are built untrained; the quality part needs
real weights (models/base/sam2_t.pt) and says it skipped otherwise.

Quality (`src/training/sam/simulate.py`): a simulated annotator on the demo video's first
circle (ground truth: its polygon, frames 0..correct+evaluate). Frame 0: clicks until the
mask has IoU >= 0.9, which starts the track; frames 1..correct: tracked, and corrected
(each click at the largest error region's centre-most pixel) where IoU < 0.9, each
corrected frame a LIT-LoRA sample; one update; the next `evaluate` frames: the tracked
proposal's mask IoU and the clicks needed to reach 0.9, without and with the adapter.
`--quality-untrained` runs that path on the untrained SAM 2 tiny (at 512 px unless
--quality-imgsz says otherwise): its figures say nothing about quality, only that the
path runs and what it costs.

    .venv/bin/python benchmarks/sam.py [--imgsz 1024] [--clicks 20] [--frames 10]
        [--threads 1 2] [--update-threads 1 2] [--update-budget 20] [--reference-epochs 2]
        [--only clicks|update|quality] [--quality-untrained] [--quality-imgsz N]
        [--quality-correct 10] [--quality-evaluate 10] [--quality-max-clicks 10]

On a 2-core machine shared with other work, torch's OpenMP threads spin-wait for each other:
2 threads can be several times slower than 1 (seen here: 54 s for one update epoch at 2
threads vs 3.3 s at 1). `OMP_WAIT_POLICY=PASSIVE` in the environment avoids the spinning.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.platform_support import lower_thread_priority  # noqa: E402
from src.training.learning.updater import UpdateContext  # noqa: E402
from src.training.sam.engine import SamEngine  # noqa: E402
from src.training.sam.lit_lora import (LitLoraSettings, correction_arrays,  # noqa: E402
                                       train_adapter)
from src.training.sam.prompts import PointPrompt, Prompt  # noqa: E402
from src.training.sam.tracker import MaskTracker  # noqa: E402
from src.training.sam.weights import SamWeightsMissing, find_weights  # noqa: E402

W, H = 1280, 720


def frame(i: int) -> np.ndarray:
    """A textured frame with a disc moving right (the object tracked)."""
    rng = np.random.default_rng(i)
    image = (rng.random((H // 8, W // 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    yy, xx = np.mgrid[:H, :W]
    disc = (xx - (300 + 20 * i)) ** 2 + (yy - 360) ** 2 < 120 ** 2
    image[disc] = (40, 40, 220)
    return image, disc


def weights_for(name: str, base: Path):
    try:
        return find_weights(name, base, allow_download=False), "weights"
    except SamWeightsMissing:
        return find_weights(name, base, untrained=True), "untrained"


class Clock:
    """Wall time and this process's CPU time (all threads): on a machine shared with other
    work the wall time grows with the load, the CPU time does not."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def time_embeddings(engine: SamEngine, frames: list) -> tuple[list, list[Clock]]:
    embs, times = [], []
    engine.embed(frames[0][0])                           # warm-up (allocations, kernels)
    for image, _ in frames:
        with Clock() as clock:
            embs.append(engine.embed(image))
        times.append(clock)
    return embs, times


def load() -> str:
    return "load {:.1f}/{:.1f}".format(*os.getloadavg()[:2])


def click_prompts(clicks: int) -> list[Prompt]:
    """A session of `clicks` growing prompts (2 positives for each negative)."""
    rng = np.random.default_rng(0)
    prompt, out = Prompt([PointPrompt(300, 360)]), []
    for k in range(clicks):
        prompt = prompt.with_point(rng.uniform(0, W), rng.uniform(0, H), k % 3 != 2)
        out.append(prompt)
    return out


def time_clicks(engine: SamEngine, emb, prompts: list[Prompt], fast: bool) -> list[Clock]:
    """engine.segment per click (the mask the user sees: the best candidate in original
    pixels; the reference path upsamples all of them, as it did)."""
    engine.segment(emb, prompts[0], fast=fast)                     # warm-up
    times = []
    for prompt in prompts:
        with Clock() as clock:
            engine.segment(emb, prompt, fast=fast)
        times.append(clock)
    return times


def time_decoder_only(engine: SamEngine, emb, prompts: list[Prompt], fast: bool) -> list[Clock]:
    import torch
    times = []
    for prompt in [prompts[0], *prompts]:
        points, labels = engine.prompt_tensors(prompt, emb.letterbox)
        with Clock() as clock, torch.inference_mode():
            if fast:
                engine.decode_fast(emb, points, labels, True)
            else:
                engine.decode_logits(*engine.image_inputs(emb), points, labels, True)
        times.append(clock)
    return times[1:]


def first_click(engine: SamEngine, image: np.ndarray, prompt: Prompt) -> Clock:
    """The first click on a fresh frame whose state was not prepared (prepare_frame)."""
    emb = engine.embed(image)
    with Clock() as clock:
        engine.segment(emb, prompt)
    return clock


def same_masks(engine: SamEngine, emb, prompts: list[Prompt]) -> str:
    """Fast vs reference on these clicks: max |logit difference|, mask pixels that differ."""
    import torch
    worst, differ, total = 0.0, 0, 0
    for prompt in prompts:
        points, labels = engine.prompt_tensors(prompt, emb.letterbox)
        with torch.inference_mode():
            ref = engine.decode_logits(*engine.image_inputs(emb), points, labels, True)[0]
            fast = engine.decode_fast(emb, points, labels, True)[0]
        worst = max(worst, float((ref - fast).abs().max()))
        for a, b in zip(engine.segment(emb, prompt, fast=False), engine.segment(emb, prompt)):
            differ += int((a.mask != b.mask).sum())
            total += a.mask.size
    return f"max |d logit| {worst:.1e}, mask pixels differing {differ} of {total}"


def clicks_beside(engine: SamEngine, emb, prompts: list[Prompt], gate: bool,
                  work, lower: bool) -> tuple[list[Clock], float]:
    """Clicks while another thread runs `work()` over and over (embedding frames, training
    an adapter), that thread at a lower priority as the app's SAM worker and update threads
    run (`lower`) or not; (click clocks, mean seconds of one `work()`)."""
    engine.gate.enabled = gate
    stop, spans = threading.Event(), []

    def loop() -> None:
        if lower:
            lower_thread_priority()
        while not stop.is_set():
            start = time.perf_counter()
            work()
            spans.append(time.perf_counter() - start)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(0.5)
    times = []
    for prompt in prompts:
        with Clock() as clock:
            engine.segment(emb, prompt)
        times.append(clock)
        time.sleep(0.15)                         # the user's pace between clicks
    stop.set()
    worker.join()
    engine.gate.enabled = True
    return times, statistics.mean(spans) if spans else float("nan")


# (click gate on, background thread at lower priority): the app's setting first
BESIDE = ((True, True), (True, False), (False, False))


def beside_name(gate: bool, lower: bool) -> str:
    return (f"gate {'on' if gate else 'off'}, background "
            f"{'at lower priority (the app)' if lower else 'at the same priority'}")


def corrections(engine: SamEngine, frames: list, embs: list, n: int) -> list[dict]:
    """Track a disc, correct `n` frames with one point each: the samples of an update."""
    tracker = MaskTracker(engine, len(frames))
    tracker.add_mask(0, embs[0], frames[0][1])
    arrays = []
    for i in range(1, n + 1):
        tracker.step(i, embs[i])
        prompt = Prompt([PointPrompt(300 + 20 * i, 360)])
        tracked = tracker.add_prompt(i, embs[i], prompt)
        tracked.mask = frames[i][1]                      # the user accepted the true disc
        arrays.append(correction_arrays(engine, tracker, prompt, tracked, embs[i].letterbox))
    return arrays


def lit_lora_update(engine: SamEngine, arrays: list[dict], budget_s: float, *, fast: bool,
                    max_epochs: int | None = None) -> dict:
    """One update on `arrays` (the issue's settings; `max_epochs` caps a comparison run)."""
    settings = LitLoraSettings(budget_s=budget_s, fast=fast)
    if max_epochs is not None:
        settings = dataclasses.replace(settings, rules=dataclasses.replace(
            settings.rules, max_epochs=max_epochs))
    ctx = UpdateContext(budget_s, threading.Event(), None)
    with Clock() as clock:
        _, outcome = train_adapter(engine, engine.base_decoder, arrays, settings, ctx)
    epochs = max(1, outcome.epochs)
    return {"seconds": clock.wall, "cpu": clock.cpu, "epochs": outcome.epochs,
            "reason": outcome.reason, "per_epoch": clock.wall / epochs,
            "cpu_per_epoch": clock.cpu / epochs, "best": outcome.best_metric,
            "best_epoch": outcome.best_epoch}


def update_line(name: str, u: dict) -> str:
    best = "none" if u["best"] is None else f"{u['best']:.3f} at epoch {u['best_epoch']}"
    return (f"{name}: wall {u['seconds']:.1f} s / CPU {u['cpu']:.1f} s for {u['epochs']} epochs "
            f"({u['reason']}), {1 / u['per_epoch']:.2f} epochs/s, per epoch wall "
            f"{u['per_epoch']:.2f} s CPU {u['cpu_per_epoch']:.2f} s, best val IoU {best}")


def summary(clocks: list[Clock], unit: float = 1.0) -> str:
    wall = [c.wall for c in clocks]
    cpu = [c.cpu for c in clocks]
    return (f"wall median {statistics.median(wall) * unit:.1f} (mean "
            f"{statistics.mean(wall) * unit:.1f}), CPU median {statistics.median(cpu) * unit:.1f}")


def percentiles(clocks: list[Clock]) -> str:
    wall = sorted(c.wall * 1000 for c in clocks)
    cpu = sorted(c.cpu * 1000 for c in clocks)
    pick = lambda xs, q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return (f"p50 {pick(wall, .5):5.1f} p95 {pick(wall, .95):5.1f} ms wall, "
            f"CPU p50 {pick(cpu, .5):5.1f} ms")


def click_table(name: str, engine: SamEngine, emb, frames: list, prompts: list[Prompt],
                threads: list[int]) -> None:
    import torch
    print(f"{name}: fast vs reference on these clicks: {same_masks(engine, emb, prompts[:5])}")
    for n in threads:
        torch.set_num_threads(n)
        for label, fn in (("segment", time_clicks), ("decoder", time_decoder_only)):
            ref, fast = fn(engine, emb, prompts, False), fn(engine, emb, prompts, True)
            print(f"  {n} thread(s) {label:8s} reference {percentiles(ref)} | fast "
                  f"{percentiles(fast)} | {load()}", flush=True)
        first = first_click(engine, frames[1][0], prompts[0])
        print(f"  {n} thread(s) first click on a frame not prepared: {first.wall * 1000:.1f} ms "
              f"wall (prepare_frame when the frame opens makes it a later click)", flush=True)


def quality_weights(args):
    """(weights, input size) of the quality part, or None after saying why it skipped."""
    try:
        weights = find_weights("sam2_t", args.base, allow_download=False)
    except SamWeightsMissing:
        if not args.quality_untrained:
            print(f"quality: skipped (no sam2_t.pt in {args.base}: mask IoU and clicks per "
                  f"frame with and without LIT-LoRA need real weights; --quality-untrained "
                  f"runs the path on the untrained model, figures meaningless)", flush=True)
            return None
        weights = find_weights("sam2_t", args.base, untrained=True)
        print("quality: UNTRAINED sam2_t (--quality-untrained): the IoU and clicks below say "
              "NOTHING about quality (random weights: masks unrelated to the object); they only "
              "show that the path runs and how long it takes", flush=True)
    # untrained masks never reach IoU 0.9: every frame costs max_clicks tracker runs, so
    # the path is shown on fewer frames and clicks (10+10 frames at 10 clicks: 7.5 min)
    small = weights.untrained
    for name, full, short in (("correct", 10, 3), ("evaluate", 10, 3), ("max_clicks", 10, 3)):
        if getattr(args, f"quality_{name}") is None:
            setattr(args, f"quality_{name}", short if small else full)
    return weights, args.quality_imgsz or (512 if small else args.imgsz)


def frame_results(name: str, results: dict) -> str:
    """'frames a-b: IoU proposal -> after, clicks' of one phase."""
    if not results:
        return f"{name}: no frame"
    rs = list(results.values())
    before = statistics.mean(r.iou_before for r in rs)
    after = statistics.mean(r.iou_after for r in rs)
    return (f"{name} frames {min(results)}-{max(results)}: proposal IoU {before:.3f} -> {after:.3f}"
            f" after {sum(r.clicks for r in rs)} clicks ({sum(r.clicks > 0 for r in rs)} frames "
            f"corrected, {sum(r.reached() for r in rs)}/{len(rs)} reached 0.9)")


def quality(args) -> None:
    """The simulated annotator on the demo video, without and with LIT-LoRA."""
    from src.data.demo import MIN_VISIBLE
    from src.training.sam import simulate

    chosen = quality_weights(args)
    if chosen is None:
        return
    weights, imgsz = chosen
    count = 1 + args.quality_correct + args.quality_evaluate
    images, truths, visible = simulate.demo_truth(count)
    skipped = [i for i, t in enumerate(truths) if t is None]
    engine = SamEngine.load(weights, image_size=imgsz)
    with Clock() as embed:
        embs = [engine.embed(image) for image in images]
    print(f"quality ({'untrained' if weights.untrained else weights.path}, input {imgsz} px, "
          f"2 threads): demo video object {simulate.DEMO_OBJECT} ('circle'), frames 0-{count - 1}"
          f", visible fraction min {min(visible):.2f}; frames below {MIN_VISIBLE} not measured: "
          f"{skipped or 'none'}; {args.quality_correct} correction + {args.quality_evaluate} "
          f"evaluation frames, max {args.quality_max_clicks} clicks a frame; embedding "
          f"{embed.wall / count:.2f} s/frame | {load()}",
          flush=True)
    kwargs = {"correct": args.quality_correct, "evaluate": args.quality_evaluate,
              "max_clicks": args.quality_max_clicks, "budget_s": args.update_budget}
    with Clock() as start_clock:
        start = simulate.start_frame(engine, embs[0], truths[0],
                                     max_clicks=args.quality_max_clicks)
    print(f"  frame 0 (decoder-only clicks): {start.clicks} clicks to IoU "
          f"{start.iou_after:.3f} ({start_clock.wall:.1f} s)", flush=True)
    runs = {}
    for lit in (False, True):
        with Clock() as clock:
            run = simulate.quality_run(engine, embs, truths, lit_lora=lit, start=start, **kwargs)
        runs[lit] = run
        name = "with LIT-LoRA" if lit else "without LIT-LoRA"
        print(f"  {name}: {frame_results('corrections', run.corrections)}; run wall "
              f"{clock.wall:.1f} s CPU {clock.cpu:.1f} s | {load()}", flush=True)
        if lit:
            print("  " + update_summary(run, args.update_budget), flush=True)
        print(f"  {name}: {frame_results('evaluation', run.evaluation)}", flush=True)
    off, on = runs[False], runs[True]
    print(f"quality: evaluation frames {sorted(on.evaluation)}: mean proposal IoU without "
          f"LIT-LoRA {off.proposal_iou:.3f} | with {on.proposal_iou:.3f}; clicks per frame to "
          f"IoU >= 0.9 (max {args.quality_max_clicks}) without {off.clicks_per_frame:.2f} | "
          f"with {on.clicks_per_frame:.2f}; frames reaching 0.9 without {off.reached} | with "
          f"{on.reached} of {len(on.evaluation)}; update {on.update_s:.1f} s on {on.samples} "
          f"samples" + ("  [UNTRAINED: meaningless for quality]" if weights.untrained else ""),
          flush=True)


def update_summary(run, budget_s: float) -> str:
    out = run.outcome
    if out is None:
        return "LIT-LoRA update: none (no frame was corrected, no sample)"
    best = "none" if out.best_metric is None else f"{out.best_metric:.3f} at epoch {out.best_epoch}"
    return (f"LIT-LoRA update on {run.samples} samples: wall {run.update_s:.1f} s (budget "
            f"{budget_s:g} s), {out.epochs} epochs ({out.reason}), best val IoU {best}, "
            f"adapter {'used' if run.adapted else 'none (no epoch finished)'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--frames", type=int, default=10, help="corrected frames of the update")
    ap.add_argument("--base", type=Path, default=ROOT / "models" / "base")
    ap.add_argument("--update-budget", type=float, default=20.0,
                    help="wall-time budget of the fast LoRA update, s (the target; the "
                         "early-stopping rules may end it first)")
    ap.add_argument("--reference-epochs", type=int, default=2,
                    help="epochs of the reference trainer (its per-epoch cost; 0: skip)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="torch threads of the click timings")
    ap.add_argument("--update-threads", type=int, nargs="+", default=[1, 2],
                    help="torch threads of the update (1: no OpenMP spin-waiting against "
                         "other work on a busy 2-core machine)")
    ap.add_argument("--only", choices=["clicks", "update", "quality"], default=None)
    ap.add_argument("--quality-untrained", action="store_true",
                    help="run the quality part on the untrained sam2_t when there are no "
                         "weights (its figures say nothing about quality)")
    ap.add_argument("--quality-imgsz", type=int, default=None,
                    help="input size of the quality part (default: --imgsz with weights, "
                         "512 untrained)")
    ap.add_argument("--quality-correct", type=int, default=None,
                    help="tracked frames the user corrects before the update (default: 10 "
                         "with weights, 3 untrained)")
    ap.add_argument("--quality-evaluate", type=int, default=None,
                    help="frames after the update where IoU and clicks are measured "
                         "(default: 10 with weights, 3 untrained)")
    ap.add_argument("--quality-max-clicks", type=int, default=None,
                    help="clicks after which the simulated user gives up on a frame "
                         "(default: 10 with weights, 3 untrained)")
    args = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}, input {args.imgsz} px, frames {W}x{H}, "
          f"{os.cpu_count()} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')!r}"
          f", {load()}", flush=True)
    frames = [frame(i) for i in range(args.frames + 1)]
    prompts = click_prompts(args.clicks)
    names = ("sam2_t",) if args.only == "update" else ("sam2_t", "mobile_sam")
    if args.only == "quality":
        names = ()
    results = {}
    for name in names:
        weights, kind = weights_for(name, args.base)
        engine = SamEngine.load(weights, image_size=args.imgsz)
        torch.set_num_threads(2)
        count = len(frames) if name == "sam2_t" and args.only != "clicks" else 3
        embs, times = time_embeddings(engine, frames[:count])
        results[name] = (engine, embs, kind)
        print(f"{name} ({kind}): embedding s/frame over {count} frames at 2 threads: "
              f"{summary(times)} | {load()}", flush=True)
        if args.only == "update":
            continue
        click_table(name, engine, embs[0], frames, prompts, args.threads)
        torch.set_num_threads(2)
        for gate, lower in BESIDE:
            clicks, embed_s = clicks_beside(engine, embs[0], prompts[:10], gate,
                                            lambda: engine.embed(frames[2][0]), lower)
            print(f"  clicks while another thread embeds frames, {beside_name(gate, lower)}"
                  f": {percentiles(clicks)}; embeds meanwhile {embed_s:.1f} s each | {load()}",
                  flush=True)
    if args.only not in ("clicks", "quality"):
        engine, embs, kind = results["sam2_t"]
        torch.set_num_threads(2)
        arrays = corrections(engine, frames, embs, args.frames)
        print(f"LIT-LoRA update on {args.frames} corrected frames (sam2_t {kind}, target "
              f"<= 20 s):", flush=True)
        runs = {}
        for threads in args.update_threads:
            torch.set_num_threads(threads)
            runs[threads] = fast = lit_lora_update(engine, arrays, args.update_budget, fast=True)
            print(f"  {threads} thread(s) " + update_line("fast trainer, full update", fast)
                  + f" | {load()}", flush=True)
            shortest = lit_lora_update(engine, arrays, 1e9, fast=True, max_epochs=11)
            print(f"  {threads} thread(s) " + update_line(
                "the shortest early stop (patience 10: 11 epochs, run without a budget)",
                shortest) + f" | {load()}", flush=True)
        if args.reference_epochs:
            threads = args.update_threads[0]
            torch.set_num_threads(threads)
            fast = runs[threads]
            ref = lit_lora_update(engine, arrays, 1e9, fast=False,
                                  max_epochs=args.reference_epochs)
            print(f"  {threads} thread(s) " + update_line(
                f"reference trainer, first {args.reference_epochs} epochs", ref)
                + f" | {load()}", flush=True)
            print(f"  per-epoch ratio reference/fast at {threads} thread(s): wall "
                  f"{ref['per_epoch'] / fast['per_epoch']:.1f}x, CPU "
                  f"{ref['cpu_per_epoch'] / fast['cpu_per_epoch']:.1f}x", flush=True)
        torch.set_num_threads(2)
        for gate, lower in BESIDE:
            clicks, _ = clicks_beside(engine, embs[0], prompts[:10], gate, lambda: (
                lit_lora_update(engine, arrays, 1e9, fast=True, max_epochs=1)), lower)
            print(f"  clicks while an update trains in another thread, "
                  f"{beside_name(gate, lower)}: {percentiles(clicks)} | {load()}", flush=True)
    if args.only in (None, "quality"):
        torch.set_num_threads(2)
        quality(args)
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
