"""Replays the race, SIGKILL and full-disk cases of the hardening issue (#9) through the
real CLI and prints, for each, the exit codes seen and what is left on disk.

    .venv/bin/python benchmarks/crash_race_probe.py [--tries 15] [--work DIR]

- races: two `import` processes started together, `--tries` times each: onto a brand-new
  project (two different videos), and the same video onto one project;
- kills: each command SIGKILLs itself at a named stage ($LABELLOOP_CRASH_AT), then the
  project is opened again (which sweeps) and every file without its row, row without its
  files and temp entry is listed;
- full disk (root only: a 2 MB tmpfs): import, capture, dataset build, export.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.db import datasets as datasets_repo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.project import Project  # noqa: E402


def cli(project: Path, *argv, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--project", str(project),
                             *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate()
    lines = err.decode(errors="replace").strip().splitlines()
    return proc.returncode, (lines[-1] if lines else "")


def video(path: Path, n: int = 20, size=(160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    rng = np.random.default_rng(len(path.name))
    for _ in range(n):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    writer.release()
    return path


def images(folder: Path, n: int, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (size, size, 3), np.uint8))
    return folder


def yolo(folder: Path) -> Path:
    imgs = images(folder / "images", 4)
    (folder / "labels").mkdir(exist_ok=True)
    for p in imgs.iterdir():
        (folder / "labels" / f"{p.stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (folder / "data.yaml").write_text("train: images\nnames: [car]\n")
    return folder / "data.yaml"


def orphans(root: Path, *elsewhere: Path) -> list[str]:
    """Files/folders without rows, rows without files, temp entries (after an open)."""
    with Project.open(root, create=False) as project:
        frames = {f.image_path for f in frames_repo.list_frames(project.conn)}
        sources = sources_repo.list_sources(project.conn)
        datasets = {d.path for d in datasets_repo.list_datasets(project.conn)}
    ids, paths = {str(s.id) for s in sources}, {s.path for s in sources}
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    found = [rel(p) for p in root.iterdir() if p.name.startswith(".")]
    for folder in (root / "frames").glob("*"):
        found += [rel(folder)] if folder.name not in ids else [
            rel(f) for f in folder.iterdir() if rel(f) not in frames]
    found += [f"row {f}" for f in frames if not (root / f).is_file()]
    found += [rel(p) for p in (root / "datasets").glob("*/*") if rel(p) not in datasets]
    found += [f"row {d}" for d in datasets if not (root / d).is_dir()]
    found += [rel(p) for p in (root / "imports").glob("*") if str(p) not in paths]
    for folder in elsewhere:
        found += [str(p) for p in folder.glob(".*")]
    return found


def size_of(paths: list[str], root: Path) -> int:
    total = 0
    for p in paths:
        path = root / p if not os.path.isabs(p) else Path(p)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def races(work: Path, tries: int) -> None:
    print(f"\n== races ({tries} tries each, two processes started together) ==")
    clips = [video(work / "a.avi"), video(work / "b.avi")]
    codes, errors = Counter(), Counter()
    for t in range(tries):
        project = work / f"new{t}"
        procs = [cli(project, "import", clip) for clip in clips]
        for code, line in map(finish, procs):
            codes[code] += 1
            if code:
                errors[line[:100]] += 1
    print(f"brand-new project opened by two: exit codes {dict(codes)} {dict(errors) or ''}")
    codes, errors, rows = Counter(), Counter(), Counter()
    for t in range(tries):
        project = work / f"same{t}"
        Project.open(project).close()
        procs = [cli(project, "import", clips[0]) for _ in range(2)]
        for code, line in map(finish, procs):
            codes[code] += 1
            if code:
                errors[line[:100]] += 1
        with Project.open(project, create=False) as p:
            rows[len(sources_repo.list_sources(p.conn))] += 1
    print(f"same video imported by two: exit codes {dict(codes)}, sources per project "
          f"{dict(rows)} {dict(errors) or ''}")


def kills(work: Path) -> None:
    print("\n== SIGKILL at each stage, then open the project ==")
    folder, data = images(work / "imgs", 6), yolo(work / "yolo")
    annotated = work / "annotated"
    finish(cli(annotated, "import", data, "--format", "yolo"))
    clip = video(work / "k.avi")
    cases = [("import:staged", ["import", folder], None),
             ("import:placed", ["import", folder], None),
             ("import:staged", ["import", data, "--format", "yolo"], None),
             ("import:placed", ["import", data, "--format", "yolo"], None),
             ("capture:staged", ["frames", "capture", "1", "--at", "3"], clip),
             ("capture:placed", ["frames", "capture", "1", "--at", "3"], clip),
             ("build:written", ["dataset", "build", "ds", "--task", "detect", "--split",
                                "0.5,0.5,0", "--group-by", "none"], annotated),
             ("build:placed", ["dataset", "build", "ds", "--task", "detect", "--split",
                               "0.5,0.5,0", "--group-by", "none"], annotated),
             ("export:written", ["export", work / "exports" / "out", "--format", "coco"],
              annotated)]
    for n, (stage, argv, base) in enumerate(cases):
        project = work / f"kill{n}"
        if isinstance(base, Path) and base.is_dir():
            shutil.copytree(base, project)
        else:
            Project.open(project).close()
            if base is not None:
                finish(cli(project, "import", base))
        (work / "exports").mkdir(exist_ok=True)
        code, _ = finish(cli(project, *argv, env={"LABELLOOP_CRASH_AT": stage}))
        left_before = [p.name for p in (work / "exports").glob(".*")] + \
            [p.name for p in project.rglob(".*") if p.name not in (".", "..")]
        left = orphans(project, work / "exports")
        again, _ = finish(cli(project, *argv))
        print(f"{' '.join(map(str, argv[:2]))[:28]:28} killed at {stage:15} exit {code}; "
              f"temp entries before reopening: {len(left_before)}; "
              f"left after reopening: {left or 'nothing'}; rerun exit {again}")
        shutil.rmtree(work / "exports", ignore_errors=True)


def full_disk(work: Path) -> None:
    print("\n== full disk (2 MB tmpfs) ==")
    disk = work / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        print("skipped: cannot mount a tmpfs (needs root)")
        return
    try:
        _full_disk_cases(work, disk)
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def _fill(disk: Path, leave: int) -> None:
    filler = disk / "filler"
    with open(filler, "ab") as f:
        with contextlib.suppress(OSError):        # ENOSPC: the disk is full, as wanted
            while True:
                f.write(b"\xff" * 65536)
                f.flush()
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def _full_disk_cases(work: Path, disk: Path) -> None:
    big = images(work / "big", 24, size=200)
    clip = video(work / "full.avi", 40)
    annotated = work / "annotated"

    def case(name, argv, project, leave=None, extra=()):
        if leave is not None:
            _fill(disk, leave)
        code, line = finish(cli(project, *argv))
        (disk / "filler").unlink(missing_ok=True)
        left = orphans(project, *extra)
        print(f"{name:34} exit {code}: {line}\n{'':34} left: {left or 'nothing'}")

    p = disk / "p1"
    Project.open(p).close()
    case("import 24 x 120 KB images", ["import", big], p)
    shutil.rmtree(p)
    p = disk / "p2"
    finish(cli(p, "import", clip))
    case("capture 40 frames, 60 KB free", ["frames", "capture", "1", "--every", "1"], p,
         leave=60_000)
    shutil.rmtree(p)
    p = disk / "p3"
    shutil.copytree(annotated, p)
    case("dataset build, 48 KB free", ["dataset", "build", "ds", "--task", "crops",
                                       "--split", "0.5,0.5,0", "--group-by", "none"], p,
         leave=48_000)
    shutil.rmtree(p)
    (disk / "exports").mkdir()
    case("export onto the full disk", ["export", disk / "exports" / "voc", "--format", "voc"],
         annotated, leave=0, extra=(disk / "exports",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=15)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="labelloop-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scratch folder: {work}")
    races(work, args.tries)
    kills(work)
    full_disk(work)


if __name__ == "__main__":
    main()
