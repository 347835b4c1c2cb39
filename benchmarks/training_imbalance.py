"""Does each imbalance setting lift a rare class the plain classifier misses? Asserts nothing.

Data: defect crops like the seed use case, 32x32 px on a noisy surface texture:
  clean    ~60 % of the crops: texture only
  scratch  ~35 %: a dark line with a dark knot on it whose contrast is uniform in [0, 40]
  defect   5 % (the rare class): the same line, the knot's contrast uniform in [25, 52]
Only the knot's contrast tells a defect from a scratch, and knots of contrast 25-40 occur
in both, about as often per crop of either class. A classifier that follows the training
priors (7 scratches per defect) calls those scratches: it can find at most the defects whose
knot is darker than any scratch's, ~44 % of them. A classifier that weighs the classes
equally calls them defects: it can find all of them (at the cost of precision: the scratches
with such knots become false alarms) and its balanced accuracy is higher.
Arms (each alone, then all together; configs/defect_classifier.yaml otherwise):
  baseline         cross-entropy, shuffled batches
  class_weights    inverse-frequency weighted cross-entropy
  focal_loss       focal loss, gamma 2 (alpha 0.75 on the defect, the binary convention's
                   positive index 1)
  balanced_sampler each class equally likely per draw
  augment          minority augmentation: 6 augmented copies ('standard' pipeline of
                   configs/augment.yaml) of every training defect, as `dataset build
                   --augment standard:defect=6` writes them
  combined         all four
Measured on a held-out test split (not the val split that picks the best checkpoint), three
seeds (data, init and shuffling all change), mean ± standard deviation.
Target (issue 10): baseline defect recall < 0.5; each setting >= 0.70 without a lower
balanced accuracy than the baseline.
Measured, seed 0 only (`--seeds 0 --epochs 24 --threads 1`, resnet18, 16 CPU-minutes):
  arm               defect recall  precision  balanced acc
  baseline              0.000        0.000       0.659
  class_weights         0.400        0.211       0.720
  focal_loss            0.267        0.205       0.703
  balanced_sampler      0.733        0.129       0.664
  augment               0.133        0.250       0.689
  combined              0.300        0.214       0.713
(12 epochs: baseline 0.467, class weights 0.300.) Every setting lifts recall and balanced
accuracy above the baseline, but only the balanced sampler reaches 0.70: TARGET NOT MET.
The model has not learned the knot's contrast well enough (precision stays ~0.2); seeds 1-2
were not run. Next: a clearer cue or more epochs, then three seeds.

    .venv/bin/python benchmarks/training_imbalance.py [--seeds 0 1 2] [--epochs 24] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from src.db.project import Project  # noqa: E402
from src.training.config import load_config  # noqa: E402
from src.training.image_folder import ImageClassDataset, load_splits  # noqa: E402
from src.training.metrics import classification_metrics  # noqa: E402
from src.training.runner import start_training  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RARE = "defect"
SIZE = 32
COUNTS = {"train": {"clean": 360, "scratch": 210, "defect": 30},
          "val": {"clean": 120, "scratch": 70, "defect": 10},
          "test": {"clean": 360, "scratch": 210, "defect": 30}}
KNOT_CONTRAST = {"scratch": (0.0, 40.0), "defect": (25.0, 52.0)}
AUGMENT_COPIES = 6
OFF = ["imbalance.focal_loss=false", "imbalance.balanced_sampler=false",
       "imbalance.class_weights=false"]
FOCAL = ["imbalance.focal_loss=true", "imbalance.focal_gamma=2.0", "imbalance.focal_alpha=0.75"]
ARMS = {
    "baseline": (OFF, False),
    "class_weights": (OFF + ["imbalance.class_weights=true"], False),
    "focal_loss": (OFF + FOCAL, False),
    "balanced_sampler": (OFF + ["imbalance.balanced_sampler=true"], False),
    "augment": (OFF, True),
    "combined": (OFF + FOCAL + ["imbalance.class_weights=true",
                                "imbalance.balanced_sampler=true"], True),
}


def crop(rng: np.random.Generator, name: str) -> np.ndarray:
    """One grey crop (as BGR) of class `name`."""
    texture = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.2)
    img = 150 + 18 * texture / (texture.std() + 1e-6)
    if name != "clean":
        start, end = rng.uniform(4, SIZE - 4, 2), rng.uniform(4, SIZE - 4, 2)
        while np.linalg.norm(end - start) < SIZE * 0.5:
            end = rng.uniform(4, SIZE - 4, 2)
        line = np.zeros((SIZE, SIZE), np.uint8)
        cv2.line(line, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, 2,
                 cv2.LINE_AA)
        img -= 55 * line
        knot = start + rng.uniform(0.3, 0.7) * (end - start)
        disc = np.zeros((SIZE, SIZE), np.float32)
        cv2.circle(disc, tuple(int(v) for v in knot), 2, 1.0, -1, cv2.LINE_AA)
        img -= rng.uniform(*KNOT_CONTRAST[name]) * disc
    grey = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def write_dataset(dest: Path, seed: int, augment_copies: int = 0) -> None:
    """ImageFolder splits + data.yaml; `augment_copies` augmented copies of each training
    defect (the dataset builder's minority oversampling)."""
    from src.data.augment import augment, build_pipeline

    rng = np.random.default_rng(seed)
    pipeline = build_pipeline("standard", seed=seed)
    for split, per_class in COUNTS.items():
        for name, n in per_class.items():
            (dest / split / name).mkdir(parents=True)
            for i in range(n):
                image = crop(rng, name)
                cv2.imwrite(str(dest / split / name / f"{i}.png"), image)
                copies = augment_copies if split == "train" and name == RARE else 0
                for k in range(copies):
                    cv2.imwrite(str(dest / split / name / f"{i}_aug{k}.png"),
                                augment(pipeline, image, [])[0])
    (dest / "data.yaml").write_text("names: [clean, defect, scratch]\n")


def register(project: Project, dest: Path, version: int, seed: int) -> None:
    from src.db import datasets as datasets_repo
    from src.db.records import DatasetRecord

    datasets_repo.add_dataset(project.conn, DatasetRecord(
        name="defects", version=version, task="crops", path=project.relpath(dest),
        content_hash=f"synthetic-defects-seed{seed}-v{version}"))


@torch.no_grad()
def evaluate(run_dir: Path, data: Path) -> tuple[dict, dict]:
    """Metrics of the registered model on the test split, with the trainer's eval transform."""
    from src.training.timm_trainer import build_transform, data_config

    config = json.loads((run_dir / "model_config.json").read_text())
    model = timm.create_model(config["architecture"], num_classes=config["num_classes"])
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    model.eval()
    splits = load_splits(data)
    items = splits.samples["test"]
    transform = build_transform(data_config(model, config["imgsz"]), False, {})
    ds = ImageClassDataset(items, config["imgsz"], train=False, transform=transform)
    probs = torch.cat([torch.softmax(model(torch.stack([ds[i][0] for i in range(
        s, min(s + 128, len(ds)))])), 1) for s in range(0, len(ds), 128)]).numpy()
    return classification_metrics(np.array([y for _, y in items]), probs, splits.class_names)


def run_arm(project: Project, arm: str, seed: int, args) -> dict:
    overrides, augmented = ARMS[arm]
    cfg = load_config(REPO / "configs" / "defect_classifier.yaml", [
        f"name=defects_{arm}_{seed}", f"model={args.model}", f"epochs={args.epochs}",
        f"imgsz={SIZE}", f"batch={args.batch}", f"seed={seed}", "device=cpu", "workers=0",
        "patience=0", "tensorboard=false", "warmup_epochs=0", f"lr={args.lr}", *overrides])
    version = 2 if augmented else 1
    run = start_training(project, cfg, f"defects:v{version}")
    if run.status != "completed":
        raise SystemExit(f"{arm} seed {seed}: run {run.status}: {run.error}")
    data = project.datasets_dir / "defects" / f"v{version}"
    metrics, per_class = evaluate(project.abspath(run.run_dir), data)
    return {"recall": per_class[RARE]["recall"], "precision": per_class[RARE]["precision"],
            "bacc": metrics["balanced_accuracy"], "f1": metrics["macro_f1"]}


def cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1),
                        help="torch CPU threads (1 on a machine busy with other work)")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="labelloop-imbalance-"))
    os.environ.setdefault("LABELLOOP_LOCK_DIR", str(root / "lock"))
    os.environ["LABELLOOP_MODELS"] = str(root / "models")
    torch.set_num_threads(args.threads)
    print(f"defect crops {SIZE}px: train {COUNTS['train']} (+{AUGMENT_COPIES} augmented copies "
          f"per defect in the 'augment' arms), test {COUNTS['test']}; model {args.model} "
          f"(random init), {args.epochs} epochs, batch {args.batch}, lr {args.lr}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    results: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    for seed in args.seeds:
        project = Project.open(root / f"seed{seed}")
        for version, copies in ((1, 0), (2, AUGMENT_COPIES)):
            dest = project.datasets_dir / "defects" / f"v{version}"
            write_dataset(dest, seed, copies)
            register(project, dest, version, seed)
        for arm in args.arms:
            results[arm].append(run_arm(project, arm, seed, args))
            r = results[arm][-1]
            print(f"  seed {seed} {arm:<17} defect recall {r['recall']:.3f}  precision "
                  f"{r['precision']:.3f}  balanced acc {r['bacc']:.3f}", flush=True)
    print(f"\n{'arm':<17} {'defect recall':>15} {'defect prec':>13} {'balanced acc':>14} "
          f"{'macro F1':>13}   (mean ± sd over seeds {args.seeds})")
    for arm, rows in results.items():
        cells = [_mean_sd([r[k] for r in rows]) for k in ("recall", "precision", "bacc", "f1")]
        print(f"{arm:<17} {cells[0]:>15} {cells[1]:>13} {cells[2]:>14} {cells[3]:>13}")
    print(f"\nwall {time.perf_counter() - wall0:.0f} s, CPU {cpu_seconds() - cpu0:.0f} s")
    return 0


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


if __name__ == "__main__":
    sys.exit(main())
