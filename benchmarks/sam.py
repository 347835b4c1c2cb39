"""Segment Anything timings on this machine (CPU): per-click decoder latency from a cached
embedding (target <= 50 ms), embedding time per frame for SAM 2 tiny vs MobileSAM, and a
LIT-LoRA update on 10 corrected frames (target <= 20 s). Timings do not depend on the
weights, so without weights the architectures are built untrained; the quality part (mask
IoU against the demo video's ground truth with and without the adapter) needs real
weights and says it skipped otherwise.

    .venv/bin/python benchmarks/sam.py [--imgsz 1024] [--clicks 20] [--frames 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def time_clicks(engine: SamEngine, emb, clicks: int) -> list[Clock]:
    rng = np.random.default_rng(0)
    prompt, times = Prompt(), []
    engine.segment(emb, Prompt([PointPrompt(300, 360)]))  # warm-up
    for k in range(clicks):
        prompt = prompt.with_point(rng.uniform(0, W), rng.uniform(0, H), k % 3 != 2)
        with Clock() as clock:
            engine.segment(emb, prompt)
        times.append(clock)
    return times


def lit_lora_update(engine: SamEngine, frames: list, embs: list, n: int,
                    budget_s: float) -> dict:
    """Track a disc, correct `n` frames with one point each, time one update on them."""
    tracker = MaskTracker(engine, len(frames))
    tracker.add_mask(0, embs[0], frames[0][1])
    arrays = []
    for i in range(1, n + 1):
        tracker.step(i, embs[i])
        prompt = Prompt([PointPrompt(300 + 20 * i, 360)])
        tracked = tracker.add_prompt(i, embs[i], prompt)
        tracked.mask = frames[i][1]                      # the user accepted the true disc
        arrays.append(correction_arrays(engine, tracker, prompt, tracked, embs[i].letterbox))
    settings = LitLoraSettings(budget_s=budget_s)
    ctx = UpdateContext(budget_s, threading.Event(), None)
    with Clock() as clock:
        _, outcome = train_adapter(engine, engine.base_decoder, arrays, settings, ctx)
    epochs = max(1, outcome.epochs)
    return {"seconds": clock.wall, "cpu": clock.cpu, "epochs": outcome.epochs,
            "reason": outcome.reason, "per_epoch": clock.wall / epochs,
            "cpu_per_epoch": clock.cpu / epochs}


def summary(clocks: list[Clock], unit: float = 1.0) -> str:
    wall = [c.wall for c in clocks]
    cpu = [c.cpu for c in clocks]
    return (f"wall median {statistics.median(wall) * unit:.1f} (mean "
            f"{statistics.mean(wall) * unit:.1f}), CPU median {statistics.median(cpu) * unit:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--frames", type=int, default=10, help="corrected frames of the update")
    ap.add_argument("--base", type=Path, default=ROOT / "models" / "base")
    ap.add_argument("--update-budget", type=float, default=120.0,
                    help="wall-time budget of the LoRA update, s (the early-stopping rules "
                         "usually end it first)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (1 gives CPU times free of OpenMP spin-waiting on a "
                         "busy machine)")
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {args.imgsz} px, "
          f"frames {W}x{H}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    frames = [frame(i) for i in range(args.frames + 1)]
    results = {}
    for name in ("sam2_t", "mobile_sam"):
        weights, kind = weights_for(name, args.base)
        engine = SamEngine.load(weights, image_size=args.imgsz)
        count = len(frames) if name == "sam2_t" else 3
        embs, times = time_embeddings(engine, frames[:count])
        clicks = time_clicks(engine, embs[0], args.clicks)
        results[name] = (engine, embs, kind)
        print(f"{name} ({kind}): embedding s/frame over {count}: {summary(times)}; "
              f"decoder ms/click over {args.clicks} clicks: {summary(clicks, 1000)} "
              f"(target <= 50 ms)", flush=True)
    engine, embs, kind = results["sam2_t"]
    update = lit_lora_update(engine, frames, embs, args.frames, args.update_budget)
    print(f"LIT-LoRA update on {args.frames} corrected frames (sam2_t {kind}): wall "
          f"{update['seconds']:.1f} s / CPU {update['cpu']:.1f} s for {update['epochs']} epochs "
          f"({update['reason']}); per epoch wall {update['per_epoch']:.2f} s, CPU "
          f"{update['cpu_per_epoch']:.2f} s -> 100 epochs: wall {100 * update['per_epoch']:.0f} s"
          f", CPU {100 * update['cpu_per_epoch']:.0f} s (target <= 20 s)", flush=True)
    if kind == "untrained":
        print(f"quality: skipped (no sam2_t.pt in {args.base}: clicks per frame with and "
              f"without LIT-LoRA need real weights)")
    else:
        print("quality: not implemented yet (the simulated annotator on the demo video)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
