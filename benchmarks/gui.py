"""GUI performance figures, offscreen: `.venv/bin/python benchmarks/gui.py [--frames 10000]`.

1. Gallery of N captured frames (tiny PNGs registered in a temp project): time until the
   window shows the first page of thumbnails, resident memory, and thumbnail decodes while
   scrolling compared with the rows that were ever visible.
2. Switching to the neighbouring frame in the annotator with 50 shapes per frame: median ms.
3. Event-loop latency while playing a 720p video: p50/p99 lateness of a 10 ms QTimer, beside
   the same timer with the window idle (reference run in the same process), and frames shown.
4. Scrubbing a 720p H.264 video (made here with PyAV, a keyframe every 60 frames): time from
   each slider move of a scripted drag to a new image on screen, beside the same moves done as
   exact seeks (the reference: what every move cost before previews), and after release the
   time to the exact frame and the raw seeks the reader made for it.
5. Event-loop lateness during a real training run: the main window and the training monitor
   open, a YOLO detector (yaml-built yolov8n, 64 px) training in a `main.py train --events`
   child under the TrainingWorker; the same 10 ms probe beside it with no training, with
   busy-looping children that send nothing (the OS scheduler's share); the worker starts the
   child at nice 10 (platform_support.lower_priority), and the reference row puts it back to
   the GUI's priority (nice 0). `--only train --child-threads N` limits
   the child's torch threads.
Targets: first page <= 1.5 s, RSS <= 600 MB, decodes <= visible rows, switch median <= 50 ms,
p99 lateness <= 30 ms, scrub p95 <= 50 ms, exact frame after release <= 1 raw seek,
p99 lateness while training <= 50 ms.
Measured (this 2-core machine, `--only train`, 10 s rows, while a test suite ran beside it):
training as the worker runs it p99 21.8 ms (max 119), the child put back to nice 0 p99 57.7 ms;
quiet machine: 30.1 ms (max 83) as the worker runs it, 23.8 ms at nice 0 (no training 1.1 ms);
before the charts repainted once a second (four times before): p99 64-78 ms quiet.
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


def make_h264(path: Path, size: tuple[int, int], frames: int, fps: int, gop: int) -> Path:
    """A moving-texture H.264 video (PyAV/libx264) with a keyframe every `gop` frames."""
    import av
    rng = np.random.default_rng(1)
    base = cv2.resize(rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), np.uint8), size)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0",
                          "preset": "ultrafast", "bf": "2"}
        for i in range(frames):
            image = np.roll(base, i * 4, axis=1)
            cv2.putText(image, str(i), (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class _Shown:
    """Counts images put on screen (a scrub preview or an exact frame) by the annotator."""

    def __init__(self, annotator) -> None:
        self.count = 0
        for name in ("show_preview", "show_frame"):
            original = getattr(annotator, name)

            def shown(*args, _original=original) -> None:
                _original(*args)
                self.count += 1
            setattr(annotator, name, shown)


def _slider_event(slider, kind, value: int, buttons) -> None:
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QStyle, QStyleOptionSlider
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    style, cc = slider.style(), QStyle.ComplexControl.CC_Slider
    groove = style.subControlRect(cc, opt, QStyle.SubControl.SC_SliderGroove, slider)
    handle = style.subControlRect(cc, opt, QStyle.SubControl.SC_SliderHandle, slider)
    x = groove.x() + handle.width() / 2 + QStyle.sliderPositionFromValue(
        slider.minimum(), slider.maximum(), value, groove.width() - handle.width())
    pos = QPointF(x, slider.height() / 2)
    button = Qt.MouseButton.NoButton if kind == QMouseEvent.Type.MouseMove else \
        Qt.MouseButton.LeftButton
    QApplication.sendEvent(slider, QMouseEvent(kind, pos, slider.mapToGlobal(pos), button,
                                               buttons, Qt.KeyboardModifier.NoModifier))


def _drag(app, window, shown: _Shown, start: int, end: int, moves: int,
          pace_s: float) -> tuple[list[float], int, float, int]:
    """One scripted drag: per-move latency to a new image (ms), then release: the index,
    ms to the exact frame, raw seeks for it."""
    from PyQt6.QtGui import QMouseEvent
    slider, worker = window.player_bar.slider, window.player._decoder.worker
    left = Qt.MouseButton.LeftButton
    _slider_event(slider, QMouseEvent.Type.MouseButtonPress, start, left)
    assert slider.isSliderDown(), "the press did not grab the slider"
    latencies = []
    for k in range(1, moves + 1):
        value = start + round((end - start) * k / moves)
        before, t0, old_value = shown.count, time.perf_counter(), slider.value()
        _slider_event(slider, QMouseEvent.Type.MouseMove, value, left)
        if slider.value() != old_value:         # the handle moved: a new image is due
            wait_until(app, lambda: shown.count > before, 10)
            latencies.append((time.perf_counter() - t0) * 1000)
        while time.perf_counter() - t0 < pace_s:
            app.processEvents()
    released = slider.value()
    seeks = []
    original = worker.reader._seek
    worker.reader._seek = lambda index: (seeks.append(index), original(index))[1]
    t0 = time.perf_counter()
    _slider_event(slider, QMouseEvent.Type.MouseButtonRelease, released, Qt.MouseButton.NoButton)
    wait_until(app, lambda: window.player.index == released and not window.player.scrubbing
               and window.annotator.position is not None, 10)
    exact_ms = (time.perf_counter() - t0) * 1000
    worker.reader._seek = original
    return latencies, released, exact_ms, len(seeks)


def _exact_seeks(app, window, values: list[int]) -> list[float]:
    """The reference: the same positions reached by exact (verified) seeks, one by one."""
    out = []
    for value in values:
        t0 = time.perf_counter()
        window.player.seek(value)
        wait_until(app, lambda: window.player.index == value, 10)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_scrub(app: QApplication, tmp: Path) -> None:
    from src.gui.main_window import MainWindow
    t = time.perf_counter()
    video = make_h264(tmp / "scrub.mp4", (1280, 720), 360, 30, 60)
    print(f"[scrub] wrote a 1280x720 H.264 video (360 frames, keyframe every 60) in "
          f"{time.perf_counter() - t:.1f} s (setup)")
    project = Project.open(tmp / "scrub")
    import_media(project, video)
    project.close()
    window = MainWindow(tmp / "scrub")
    window.resize(1280, 860)
    window.show()
    t = time.perf_counter()
    wait_until(app, lambda: window.player.index == 0)
    wait_until(app, lambda: window.player._decoder.worker.keyframes is not None, 30)
    print(f"[scrub] first frame + keyframe index ready {time.perf_counter() - t:.2f} s after open")
    shown = _Shown(window.annotator)
    all_latencies, releases = [], []
    for start, end in ((0, 355), (355, 70), (70, 290)):
        latencies, released, exact_ms, seeks = _drag(app, window, shown, start, end, 60, 0.03)
        all_latencies += latencies
        releases.append((released, exact_ms, seeks))
    reference = _exact_seeks(app, window, [37, 213, 151, 342, 289, 75, 300, 122, 253, 178])
    print(f"[scrub] move -> new image while dragging: p50 {_pct(all_latencies, 50):.1f} ms  "
          f"p95 {_pct(all_latencies, 95):.1f} ms  max {max(all_latencies):.1f} ms "
          f"({len(all_latencies)} moves; target p95 <= 50 ms)")
    print(f"[scrub] reference, exact seek per position: p50 {_pct(reference, 50):.1f} ms  "
          f"p95 {_pct(reference, 95):.1f} ms ({len(reference)} seeks; ratio p95 "
          f"exact/preview {_pct(reference, 95) / max(_pct(all_latencies, 95), 1e-3):.1f}x)")
    for released, exact_ms, seeks in releases:
        print(f"[scrub] release at frame {released}: exact frame on screen after "
              f"{exact_ms:.1f} ms, {seeks} raw seek(s) (target <= 1)")
    window.close()


def make_detect_dataset(project: Project, count: int = 16, size: int = 64) -> str:
    """A YOLO detect snapshot (one coloured square per image) registered in the store."""
    from src.db import datasets as datasets_repo
    from src.db.records import DatasetRecord
    root = project.root / "datasets" / "squares" / "v1"
    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", count // 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            image = np.full((size, size, 3), 90, np.uint8)
            w, h = rng.integers(size // 4, size // 2, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            image[y:y + h, x:x + w] = (40, 40, 220) if i % 2 else (220, 60, 40)
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), image)
            box = ((x + w / 2) / size, (y + h / 2) / size, w / size, h / size)
            (root / "labels" / split / f"{i}.txt").write_text(f"{i % 2} {' '.join(map(str, box))}\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames:\n"
                                    "  0: red\n  1: blue\n")
    record = datasets_repo.add_dataset(project.conn, DatasetRecord(
        name="squares", version=1, task="detect", path=project.relpath(root)))
    return f"{record.name}:v{record.version}"


def _cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def _normal_priority(child: psutil.Process) -> None:
    """Put a process back to the default priority (on Linux each thread has its own nice)."""
    if sys.platform == "win32":
        child.nice(psutil.NORMAL_PRIORITY_CLASS)
        return
    for thread in child.threads():
        psutil.Process(thread.id).nice(0)


def _with_cpu_burners(app: QApplication, seconds: float, count: int) -> tuple:
    """The probe while `count` busy-looping children take the cores and send nothing: the
    lateness that is the OS scheduler's, not the GUI's work."""
    import subprocess
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(count)]
    try:
        gui_cpu = _cpu_s()
        late = _lateness(app, seconds)
        return (f"{count} CPU-burning children", late, 0, _cpu_s() - gui_cpu)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def bench_training(app: QApplication, tmp: Path, seconds: float,
                   child_threads: int | None = None) -> None:
    """Lateness of a 10 ms timer while the main window and a training monitor are open,
    idle (reference) and while a real YOLO training child runs under a TrainingWorker."""
    from src.data.demo import build_demo_project
    from src.gui.main_window import MainWindow
    from src.gui.training.monitor import TrainingMonitor
    from src.gui.training.worker import TrainingRequest
    # Our own training lock: another training on this machine would only queue this one.
    os.environ["LABELLOOP_LOCK_DIR"] = str(tmp / "lock")
    if child_threads:               # torch's intra-op threads in the child (default: every core)
        os.environ["OMP_NUM_THREADS"] = str(child_threads)
    with build_demo_project(tmp / "train") as project:
        dataset = make_detect_dataset(project)
    window = MainWindow(tmp / "train")
    window.resize(1280, 860)
    window.show()
    wait_until(app, lambda: window.player.image is not None, 60)
    request = TrainingRequest(tmp / "train", ROOT / "configs" / "detection.yaml", dataset, [
        "epochs=200", "imgsz=64", "batch=4", "workers=0", "device=cpu", "patience=0",
        "tensorboard=false", "warmup_epochs=0"])
    monitor = TrainingMonitor(request, window)
    monitor.show()
    gui_cpu = _cpu_s()
    rows = [("no training", _lateness(app, seconds), 0, _cpu_s() - gui_cpu)]
    rows.append(_with_cpu_burners(app, seconds, child_threads or os.cpu_count()))
    events: list[str] = []
    monitor.start()
    monitor.worker.event_received.connect(lambda name, _payload: events.append(name))
    t = time.perf_counter()
    wait_until(app, lambda: "on_train_batch_end" in events or not monitor.running, 300)
    if not monitor.running:
        print(f"[train] the training child ended before training: {monitor.state.text()}\n"
              f"{monitor.log.toPlainText()[-2000:]}")
        return
    print(f"[train] child started and trained a batch {time.perf_counter() - t:.1f} s after "
          f"start (setup, not measured)")
    child = psutil.Process(monitor.worker.pid)
    print(f"[train] the worker started the child at priority {child.nice()} "
          f"(platform_support.lower_priority)")
    for label, nice in (("training (as the worker runs it)", None),
                        ("training, child at nice 0", 0)):
        if nice is not None:          # the reference: the child at the GUI's own priority;
            try:
                _normal_priority(child)
            except (PermissionError, psutil.AccessDenied):   # raising it back needs privileges
                print("[train] cannot put the child back to nice 0 here (no privileges)")
                continue
        before, gui_cpu = len(events), _cpu_s()
        late = _lateness(app, seconds)
        rows.append((label, late, len(events) - before, _cpu_s() - gui_cpu))
    still = monitor.running
    monitor.worker.cancel()
    wait_until(app, lambda: not monitor.running, 120)
    for label, late, shown, cpu in rows:
        print(f"[train] lateness {label:33s}: p50 {_pct(late, 50):.2f} ms  "
              f"p99 {_pct(late, 99):.2f} ms  max {max(late):.1f} ms  ({len(late)} ticks, "
              f"{shown} events shown, GUI process CPU {cpu:.2f} s)")
    print(f"[train] {seconds:.0f} s per row; child threads "
          f"{child_threads or 'torch default'}; the child "
          f"{'trained through every row' if still else 'ENDED early'}; target p99 <= 50 ms "
          f"while training; {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    monitor.close()
    window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000, help="gallery size")
    parser.add_argument("--only", choices=("gallery", "switch", "play", "scrub", "train"),
                        default=None)
    parser.add_argument("--train-seconds", type=float, default=10.0,
                        help="how long lateness is measured with and without training")
    parser.add_argument("--child-threads", type=int, default=None,
                        help="OMP_NUM_THREADS of the training child (default: torch's own)")
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
        if args.only in (None, "scrub"):
            bench_scrub(app, tmp)
        if args.only in (None, "train"):
            bench_training(app, tmp, args.train_seconds, args.child_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
