"""GUI performance figures, offscreen: `.venv/bin/python benchmarks/gui.py [--frames 10000]`.

1. Gallery of N captured frames (tiny PNGs registered in a temp project): time until the
   window shows the first page of thumbnails, resident memory, and thumbnail decodes while
   scrolling compared with the rows that were ever visible.
2. Switching to the neighbouring frame in the annotator with 50 shapes per frame: median ms.
3. Event-loop latency while playing a 720p video: p50/p99 lateness of a 10 ms QTimer, beside
   the same timer with the window idle (reference run in the same process), and frames shown.
Targets: first page <= 1.5 s, RSS <= 600 MB, decodes <= visible rows, switch median <= 50 ms,
p99 lateness <= 30 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from PyQt6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from src.data.capture import capture_frames, import_media  # noqa: E402
from src.db import annotations as ann_repo  # noqa: E402
from src.db import classes as class_repo  # noqa: E402
from src.db import frames as frame_repo  # noqa: E402
from src.db import sources as source_repo  # noqa: E402
from src.db.connection import transaction  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.db.records import Annotation, Frame, MediaSource  # noqa: E402


def wait_until(app: QApplication, condition, timeout_s: float = 30.0) -> float:
    start = time.perf_counter()
    while not condition():
        app.processEvents()
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("condition not reached")
        time.sleep(0.0005)
    return time.perf_counter() - start


def make_gallery_project(folder: Path, count: int) -> Path:
    """`count` frames whose images are tiny PNGs (a few distinct ones, written fast)."""
    images = folder / "images"
    images.mkdir(parents=True)
    variants = [cv2.imencode(".png", np.full((48, 64, 3), v, np.uint8))[1].tobytes()
                for v in range(0, 250, 25)]
    project = Project.open(folder / "project")
    frames_dir = project.frames_dir / "1"
    frames_dir.mkdir(parents=True)
    for i in range(count):
        (frames_dir / f"{i:06d}.png").write_bytes(variants[i % len(variants)])
    (images / "000000.png").write_bytes(variants[0])
    source = source_repo.add_source(project.conn, MediaSource(
        kind="images", path=str(images), name="images", frame_count=1, width=64, height=48))
    with transaction(project.conn):
        for i in range(count):
            frame_repo.add_frame(project.conn, Frame(source.id, i, f"frames/1/{i:06d}.png", 64, 48))
    project.close()
    return folder / "project"


def bench_gallery(app: QApplication, tmp: Path, count: int) -> None:
    from src.gui.main_window import MainWindow
    t = time.perf_counter()
    root = make_gallery_project(tmp / "gallery", count)
    print(f"[gallery] built {count} frames in {time.perf_counter() - t:.1f} s (setup, not timed)")
    start = time.perf_counter()
    window = MainWindow(root)
    window.resize(1280, 860)
    window.show()
    gallery = window.gallery

    def first_page_shown() -> bool:
        model = gallery.model
        visible = [r for r in range(min(model.rowCount(), 400)) if gallery._row_visible(r)]
        return bool(visible) and all(model.rows[r].frame.id in model._images for r in visible)

    wait_until(app, first_page_shown)
    first_page = time.perf_counter() - start
    seen: set[int] = set()

    def record_visible() -> None:
        wait_until(app, lambda: not gallery.model._loading and not gallery.model._wanted
                   and not gallery.model._dispatch_timer.isActive())
        seen.update(r for r in range(gallery.model.rowCount()) if gallery._row_visible(r))

    record_visible()
    bar = gallery.view.verticalScrollBar()
    for _ in range(60):                      # scroll down fast: a page-step a go, fetchMore on the way
        bar.setValue(bar.value() + bar.pageStep() * 3)
        app.processEvents()
        record_visible()
    rss = psutil.Process().memory_info().rss / 2**20
    decodes = gallery.loader.cache.decodes
    print(f"[gallery] first page shown in {first_page:.2f} s (target <= 1.5 s)")
    print(f"[gallery] resident memory {rss:.0f} MB (target <= 600 MB)")
    print(f"[gallery] rows loaded {gallery.model.rowCount()}, rows ever visible {len(seen)}, "
          f"thumbnails decoded {decodes} (target: decodes <= visible)")
    window.close()


def make_video(path: Path, size: tuple[int, int], frames: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), np.uint8)
    base = cv2.resize(base, size, interpolation=cv2.INTER_LINEAR)
    for i in range(frames):
        image = np.roll(base, i * 4, axis=1)
        cv2.putText(image, str(i), (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        writer.write(image)
    writer.release()
    return path


def bench_switch(app: QApplication, tmp: Path) -> None:
    from src.gui.main_window import MainWindow
    video = make_video(tmp / "switch.mp4", (640, 480), 24, 25.0)
    project = Project.open(tmp / "switch")
    source, _ = import_media(project, video)
    classes = [class_repo.add_class(project.conn, n) for n in ("a", "b", "c")]
    frames = capture_frames(project, source, range(24))
    rng = np.random.default_rng(1)
    anns = []
    for frame in frames:
        for k in range(50):
            x, y = rng.uniform(0, 560), rng.uniform(0, 400)
            if k % 2:
                anns.append(Annotation(frame.id, classes[k % 3].id, "box", [x, y, x + 60, y + 60]))
            else:
                anns.append(Annotation(frame.id, classes[k % 3].id, "polygon",
                                       [[x, y], [x + 50, y + 10], [x + 30, y + 60], [x, y + 40]]))
    ann_repo.add_annotations(project.conn, anns)
    project.close()
    window = MainWindow(tmp / "switch")
    window.resize(1280, 860)
    window.show()
    wait_until(app, lambda: window.player.index == 0 and len(window.annotator.view.items_by_id) == 50)
    times = []
    for index in range(1, 24):
        start = time.perf_counter()
        window.actions["forward1"].trigger()
        wait_until(app, lambda: window.annotator.position == (source.id, index)
                   and len(window.annotator.view.items_by_id) == 50)
        window.annotator.view.viewport().repaint()       # include drawing the 50 shapes
        times.append((time.perf_counter() - start) * 1000)
    print(f"[switch] neighbouring frame with 50 shapes (640x480): median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)} switches (target median <= 50 ms)")
    window.close()


def _lateness(app: QApplication, seconds: float) -> list[float]:
    """A 10 ms repeating timer measuring how late each tick is."""
    late: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    state = {"last": None}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["last"] is not None:
            late.append(max(0.0, now - state["last"] - 10))
        state["last"] = now

    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.0005)
    timer.stop()
    return late


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_playback(app: QApplication, tmp: Path) -> None:
    from src.gui.main_window import MainWindow
    t = time.perf_counter()
    video = make_video(tmp / "hd.mp4", (1280, 720), 150, 30.0)
    print(f"[play] wrote a 1280x720 30 fps video in {time.perf_counter() - t:.1f} s (setup)")
    project = Project.open(tmp / "play")
    import_media(project, video)
    project.close()
    window = MainWindow(tmp / "play")
    window.resize(1280, 860)
    window.show()
    wait_until(app, lambda: window.player.index == 0)
    idle = _lateness(app, 2.0)
    window.player.play()
    started = time.perf_counter()
    playing = _lateness(app, 4.0)
    elapsed = time.perf_counter() - started
    shown = window.player.shown_count
    position = window.player.target
    window.player.pause()
    print(f"[play] timer lateness idle:    p50 {_pct(idle, 50):.2f} ms  p99 {_pct(idle, 99):.2f} ms "
          f"({len(idle)} ticks, reference)")
    print(f"[play] timer lateness playing: p50 {_pct(playing, 50):.2f} ms  p99 {_pct(playing, 99):.2f} ms "
          f"({len(playing)} ticks; target p99 <= 30 ms; ratio p99 playing/idle "
          f"{_pct(playing, 99) / max(_pct(idle, 99), 1e-3):.1f}x)")
    print(f"[play] in {elapsed:.2f} s at 30 fps the clock reached frame {position} "
          f"(expected ~{min(int(elapsed * 30), 149)}), {shown} frames shown, "
          f"{max(position + 1 - shown, 0)} dropped")
    window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000, help="gallery size")
    parser.add_argument("--only", choices=("gallery", "switch", "play"), default=None)
    args = parser.parse_args()
    os.environ.setdefault("LABELLOOP_SETTINGS_DIR", tempfile.mkdtemp(prefix="labelloop-bench-"))
    app = QApplication(sys.argv)
    with tempfile.TemporaryDirectory(prefix="labelloop-gui-bench-") as tmp:
        tmp = Path(tmp)
        if args.only in (None, "gallery"):
            bench_gallery(app, tmp, args.frames)
        if args.only in (None, "switch"):
            bench_switch(app, tmp)
        if args.only in (None, "play"):
            bench_playback(app, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
