"""What the crash-leftover sweep costs every Project.open on a big project.

    .venv/bin/python benchmarks/project_open_sweep.py [--sources 1000] [--versions 200]

Prints the median open time with the sweep and with it disabled (same process, same
project), and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.db import datasets as datasets_repo  # noqa: E402
from src.db import leftovers  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.db.records import DatasetRecord, MediaSource  # noqa: E402


def build(root: Path, n_sources: int, n_versions: int) -> None:
    with Project.open(root) as project:
        for i in range(n_sources):
            source = sources_repo.add_source(project.conn, MediaSource(
                "images", f"/elsewhere/{i}", str(i), frame_count=1))
            (root / "frames" / str(source.id)).mkdir(parents=True)
        for v in range(1, n_versions + 1):
            name = f"d{v % 10}"
            datasets_repo.add_dataset(project.conn, DatasetRecord(
                name=name, version=v, task="detect", path=f"datasets/{name}/v{v}"))
            (root / "datasets" / name / f"v{v}").mkdir(parents=True)


def median_open(root: Path, n: int = 30) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        Project.open(root, create=False).close()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="labelloop-open-")) / "p"
    build(root, args.sources, args.versions)
    with_sweep = median_open(root)
    real, leftovers.sweep = leftovers.sweep, lambda root, conn: []
    try:
        without = median_open(root)
    finally:
        leftovers.sweep = real
    print(f"Project.open, {args.sources} sources + {args.versions} dataset versions, median of"
          f" 30: with sweep {with_sweep * 1000:.2f} ms, sweep disabled {without * 1000:.2f} ms"
          f" (+{(with_sweep - without) * 1000:.2f} ms, x{with_sweep / without:.1f})")


if __name__ == "__main__":
    main()
