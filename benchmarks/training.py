"""All training benchmarks of issue 5 in one run; each part prints its own figures.

1 and 2: benchmarks/training_yolo.py (overhead vs plain ultralytics; LoRA vs full
fine-tuning, day -> night). 3: benchmarks/training_imbalance.py (rare-class recall of the
defect classifier with and without the imbalance settings). Each runs as its own process
so the figures of one are not disturbed by the memory of another.
Run: `.venv/bin/python benchmarks/training.py` (~15 min on 2 CPU cores); `--quick` for a
short smoke version of the YOLO parts.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short YOLO parts (smoke run)")
    args = parser.parse_args()
    parts = [
        ("1+2: YOLO overhead, LoRA vs full", [HERE / "training_yolo.py"] + (["--quick"] if args.quick else [])),
        ("3: imbalance (rare-class recall)", [HERE / "training_imbalance.py"]),
    ]
    failed = 0
    for title, cmd in parts:
        print(f"\n===== part {title} =====", flush=True)
        failed += subprocess.call([sys.executable, *map(str, cmd)]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
