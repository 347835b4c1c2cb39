"""YOLO training benchmarks (issue 5, parts 1 and 2). Prints the figures; asserts nothing.

1. Overhead: our `train_yolo` vs plain `YOLO('yolov8n.yaml').train()` with the same arguments
   on the same dataset, in one process: a warm-up run of each, then ABBA twice; target ratio
   <= 1.05.
2. LoRA vs full fine-tuning: a yolov8n trained from scratch on the 'day' half of the demo
   video is adapted to the 'night' half (darker background, dimmer objects) by full
   fine-tuning and by LoRA (r=8 on every dense conv, head frozen: the classes do not change).
   Each run is its own process, so peak RSS (psutil, polled) is per run. Targets: LoRA
   mAP50-95 >= 0.9x full's with <= 15% of its trainable parameters.

Data: frames of `src.data.demo.render` (the demo video's generator), written directly as
YOLO detect datasets. Run: `.venv/bin/python benchmarks/training_yolo.py` (~8 min on a
2-core CPU); `--quick` for a much shorter smoke version.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="labelloop-yolo-cfg-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import yaml  # noqa: E402

from src.training.config import LoraSettings, TrainConfig  # noqa: E402

DETECT_CLASSES = ("square", "circle", "triangle")


def write_demo_halves(root: Path) -> dict[str, Path]:
    """YOLO datasets of the demo video's day and night halves (every 2nd frame)."""
    from src.data.demo import CAPTURE_EVERY, FRAMES, HEIGHT, MIN_VISIBLE, WIDTH, render

    split_of = {"day": lambda k: "val" if k % 5 == 0 else "train",        # 60 train / 15 val
                "night": lambda k: "train" if k % 5 in (1, 3) else "val"}  # 30 train / 45 val
    for t, (image, objects) in enumerate(render(seed=0)):
        if t % CAPTURE_EVERY:
            continue
        half = "night" if t >= FRAMES // 2 else "day"
        split = split_of[half](t // CAPTURE_EVERY)
        for sub in ("images", "labels"):
            (root / half / sub / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / half / "images" / split / f"{t:04d}.png"), image)
        lines = []
        for cls, outline, visible in objects:
            if visible < MIN_VISIBLE:
                continue
            (x1, y1), (x2, y2) = outline.min(axis=0), outline.max(axis=0)
            x1, x2 = max(x1, 0) / WIDTH, min(x2, WIDTH) / WIDTH
            y1, y2 = max(y1, 0) / HEIGHT, min(y2, HEIGHT) / HEIGHT
            lines.append(f"{DETECT_CLASSES.index(cls)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                         f"{x2 - x1:.6f} {y2 - y1:.6f}")
        (root / half / "labels" / split / f"{t:04d}.txt").write_text("\n".join(lines) + "\n")
    out = {}
    for half in ("day", "night"):
        out[half] = root / half / "data.yaml"
        out[half].write_text(yaml.safe_dump({
            "path": str(root / half), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(DETECT_CLASSES))}))
    return out


def config(**changes) -> TrainConfig:
    base = TrainConfig(name="bench", model_type="yolo", task="detect", model="yolov8n",
                       weights=None, epochs=3, batch=8, imgsz=128, lr=0.002, optimizer="adamw",
                       patience=0, seed=0, device="cpu", workers=0,
                       lora=LoraSettings(enabled=False), tensorboard=False)
    return replace(base, **changes)


# -- part 1: overhead ------------------------------------------------------------------------

def overhead(data: Path, work: Path, epochs: int, rounds: int) -> dict:
    """Plain ultralytics vs train_yolo, same arguments, ABBA order, in this one process."""
    from ultralytics import YOLO

    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.yolo_trainer import train_yolo, ultralytics_overrides

    cfg = config(epochs=epochs)

    def plain(run_dir: Path, c: TrainConfig = cfg) -> None:
        YOLO("yolov8n.yaml").train(**ultralytics_overrides(c, data, run_dir, "cpu"))

    def ours(run_dir: Path, c: TrainConfig = cfg) -> None:
        bus = EventBus()
        bus.on("*", lambda _e, _p: None)     # a listener, as the runner's callbacks are
        train_yolo(c, data, run_dir, bus, RunControl(), base_dir=work / "no-base")

    # warm-up of both paths (label caches, font check, lazy imports), not timed
    plain(work / "overhead-warmup-plain", replace(cfg, epochs=1))
    ours(work / "overhead-warmup-ours", replace(cfg, epochs=1))
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}   # less sensitive to other load
    for i, who in enumerate(("plain", "ours", "ours", "plain") * rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        (plain if who == "plain" else ours)(work / f"overhead-{i}-{who}")
        times[who].append(time.perf_counter() - start)
        cpu[who].append(time.process_time() - start_cpu)
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    cpu_mean = {k: sum(v) / len(v) for k, v in cpu.items()}
    return {"plain_s": mean["plain"], "ours_s": mean["ours"],
            "ratio": mean["ours"] / mean["plain"],
            "ratio_min": min(times["ours"]) / min(times["plain"]),
            "cpu_ratio": cpu_mean["ours"] / cpu_mean["plain"], "runs": times, "cpu": cpu,
            "rounds": rounds, "load": os.getloadavg()[0]}


# what train_yolo adds around ultralytics' own work (functions of src/training that do not
# call back into ultralytics' training loop)
_ADDED = {"resolve_yolo_base", "ultralytics_device", "trainer_class", "imbalance_notes",
          "_completed", "has_lora", "param_counts", "_check_stop", "on_pretrain_routine_start",
          "on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
          "on_train_batch_start", "on_train_batch_end", "on_train_epoch_end", "on_fit_epoch_end",
          "on_model_save"}


def own_code_share(data: Path, work: Path, epochs: int) -> dict:
    """cProfile of one train_yolo run: seconds spent in what LabelLoop adds to ultralytics'
    work (run setup, event bridge, model.pt copy, per-class metrics, and the confusion matrix
    counted without plots). Robust to other jobs on the machine, unlike wall-clock ratios."""
    import cProfile
    import pstats

    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.yolo_trainer import train_yolo

    profile = cProfile.Profile()
    profile.enable()
    train_yolo(config(epochs=epochs), data, work / "overhead-profiled", EventBus(), RunControl(),
               base_dir=work / "no-base")
    profile.disable()
    cum: dict[tuple[str, str], float] = {}
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in pstats.Stats(profile).stats.items():
        cum[file, name] = cum.get((file, name), 0.0) + ct
    total = cum[next(k for k in cum if k[1] == "train_yolo")]
    added = sum(t for (f, n), t in cum.items() if "src/training" in f and n in _ADDED)
    wrapper = sum(t for (f, n), t in cum.items() if "src/training" in f and n == "update_metrics")
    inner = sum(t for (f, n), t in cum.items()
                if "ultralytics/models/yolo" in f and n == "update_metrics")
    return {"total_s": total, "added_s": added + wrapper - inner}


# -- part 2: LoRA vs full --------------------------------------------------------------------

def train_child(cfg: TrainConfig, data: str, run_dir: str) -> dict:
    """One training in this (fresh) process: outcome figures, epoch times, peak RSS."""
    import psutil

    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.yolo_trainer import train_yolo

    proc, peak, done = psutil.Process(), [0], threading.Event()
    start_rss = proc.memory_info().rss

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)
    threading.Thread(target=poll, daemon=True).start()
    bus, marks = EventBus(), {}
    bus.on("on_train_epoch_start", lambda _e, p: marks.setdefault(p["epoch"], [time.perf_counter()]))
    bus.on("on_train_epoch_end", lambda _e, p: marks[p["epoch"]].append(time.perf_counter()))
    start = time.perf_counter()
    outcome = train_yolo(cfg, Path(data), Path(run_dir), bus, RunControl(),
                         base_dir=Path(run_dir) / "no-base")
    wall = time.perf_counter() - start
    done.set()
    train_epoch = [b - a for a, b in marks.values()]
    return {"mAP50-95": outcome.metrics.get("metrics/mAP50-95(B)"),
            "mAP50": outcome.metrics.get("metrics/mAP50(B)"), "params": outcome.params,
            "train_s_per_epoch": sum(train_epoch) / len(train_epoch), "wall_s": wall,
            "peak_rss_mb": peak[0] / 2**20, "rss_before_mb": start_rss / 2**20,
            "model": str(outcome.merged_model), "per_class": outcome.per_class}


def val_child(model: str, data: str, imgsz: int) -> float:
    from ultralytics import YOLO

    return float(YOLO(model).val(data=data, imgsz=imgsz, batch=8, device="cpu", plots=False,
                                 verbose=False).box.map)


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def lora_vs_full(data: dict[str, Path], work: Path, base_epochs: int, adapt_epochs: int,
                 imgsz: int) -> dict:
    base = in_fresh_process(train_child, config(epochs=base_epochs, imgsz=imgsz),
                            str(data["day"]), str(work / "base-day"))
    zero_shot = in_fresh_process(val_child, base["model"], str(data["night"]), imgsz)
    adapt = dict(epochs=adapt_epochs, imgsz=imgsz, weights=base["model"])
    full = in_fresh_process(train_child, config(**adapt, lr=0.001), str(data["night"]),
                            str(work / "full-night"))
    full_hi = in_fresh_process(train_child, config(**adapt, lr=0.005), str(data["night"]),
                               str(work / "full-night-lr0.005"))
    lora_cfg = config(**adapt, lr=0.005, lora=LoraSettings(enabled=True, rank=8, alpha=16.0,
                                                           layers="all", train_head=False))
    lora = in_fresh_process(train_child, lora_cfg, str(data["night"]), str(work / "lora-night"))
    return {"base": base, "zero_shot_night_mAP50-95": zero_shot, "full": full,
            "full_lr0.005": full_hi, "lora": lora}


def print_overhead(o: dict, sizes: dict) -> None:
    print("\n== 1. overhead: train_yolo vs plain ultralytics (day half, "
          f"{sizes['over']} epochs, imgsz 128, ABBA x{o['rounds']} after a warm-up of each) ==")
    print(f"plain ultralytics: {o['plain_s']:.2f} s   train_yolo: {o['ours_s']:.2f} s   "
          f"ratio of means {o['ratio']:.3f}, of minima {o['ratio_min']:.3f}, of mean CPU "
          f"time {o['cpu_ratio']:.3f} (target <= 1.05)\nwall (s): "
          + ", ".join(f"{k}={[round(v, 2) for v in vs]}" for k, vs in o["runs"].items())
          + "\nCPU (s): "
          + ", ".join(f"{k}={[round(v, 2) for v in vs]}" for k, vs in o["cpu"].items())
          + f"\nmachine load average at the end: {o['load']:.2f} (2 cores; other jobs skew "
            "wall times)")


def print_lora(r: dict, sizes: dict) -> None:
    full, lora = r["full"], r["lora"]
    print(f"\n== 2. LoRA vs full fine-tuning: day-trained base ({sizes['base']} epochs) adapted "
          f"to night ({sizes['adapt']} epochs, imgsz {sizes['imgsz']}) ==")
    print(f"base on day val mAP50-95 {r['base']['mAP50-95']:.3f}; base on night val, no "
          f"adaptation: {r['zero_shot_night_mAP50-95']:.3f}")
    print(f"{'':7}{'trainable':>12}{'share':>8}{'s/epoch':>9}{'peak RSS MB':>13}"
          f"{'mAP50':>8}{'mAP50-95':>10}")
    for name, res in (("full", full), ("full*", r["full_lr0.005"]), ("LoRA", lora)):
        p = res["params"]
        print(f"{name:7}{p['trainable']:>12,}{p['share']:>8.1%}{res['train_s_per_epoch']:>9.2f}"
              f"{res['peak_rss_mb']:>13.0f}{res['mAP50']:>8.3f}{res['mAP50-95']:>10.3f}")
    print("full: AdamW lr 0.001; full*: lr 0.005, the LoRA run's; LoRA: r=8, alpha 16, every "
          "dense conv outside the head, head frozen")
    ratio = lora["mAP50-95"] / full["mAP50-95"] if full["mAP50-95"] else float("nan")
    share = lora["params"]["trainable"] / full["params"]["trainable"]
    print(f"LoRA / full: mAP50-95 {ratio:.3f} (target >= 0.9), trainable parameters "
          f"{share:.1%} (target <= 15%), time per epoch "
          f"{lora['train_s_per_epoch'] / full['train_s_per_epoch']:.2f}x, peak RSS "
          f"{lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}x")
    print("per-class mAP50-95 on night val: " + "; ".join(
        f"{n}: " + ", ".join(f"{c} {m['mAP50-95']:.3f}" for c, m in res["per_class"].items())
        for n, res in (("full", full), ("LoRA", lora))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke version (~2 min)")
    parser.add_argument("--work", type=Path, default=None, help="keep runs in this folder")
    parser.add_argument("--only", choices=("overhead", "lora"), help="run one part only")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds of part 1")
    args = parser.parse_args()
    sizes = dict(over=1, base=2, adapt=1, imgsz=64) if args.quick else \
        dict(over=3, base=30, adapt=12, imgsz=160)
    work = args.work or Path(tempfile.mkdtemp(prefix="labelloop-bench-yolo-"))
    data = write_demo_halves(work / "data")
    print(f"data and runs in {work}; sizes {sizes}", flush=True)

    if args.only != "lora":
        print_overhead(in_fresh_process(overhead, data["day"], work, sizes["over"], args.rounds),
                       sizes)
        share = in_fresh_process(own_code_share, data["day"], work, sizes["over"])
        print(f"profiled train_yolo run ({sizes['over']} epochs): {share['total_s']:.2f} s, of "
              f"which LabelLoop's additions {share['added_s']:.3f} s "
              f"({share['added_s'] / share['total_s']:.2%})")
    if args.only != "overhead":
        print_lora(lora_vs_full(data, work, sizes["base"], sizes["adapt"], sizes["imgsz"]), sizes)


if __name__ == "__main__":
    main()
