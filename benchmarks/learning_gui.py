"""Issue 14's "done when", in the real window: with "Learn from my corrections" on, a user
corrects frames of the demo video's second half by mouse and keyboard, and the proposals on
the following frames need fewer edits than the base's.

    .venv/bin/python benchmarks/learning_gui.py [--frames 24] [--screenshot docs/x.png]

Needs the base detector of benchmarks/learning.py (trained on the first half; run that
first, it caches it in --bench). A copy of its demo project is opened in MainWindow (offscreen
unless QT_QPA_PLATFORM says otherwise); the night-half frames' annotations are set aside as
the ground truth and removed, so each frame arrives empty and the session proposes on it.
The scripted user, on each frame: clicks each proposal and presses A when it matches a truth
box (IoU >= 0.7, same class), the class digit then A when only the class is wrong, X
otherwise; then draws each box still missing (class digit, B, drag); then presses Right twice
(the demo captures every second frame), having spent --pace seconds on the frame. Updates start themselves every 5 corrected frames,
in the background, while the user goes on. Before correcting, the edits the proposals need
are counted with the simulated annotator's rule (src/training/learning/edits.py), next to
the edits the base alone would need on the same frame.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from src.data import demo  # noqa: E402
from src.db import annotations as annotations_repo  # noqa: E402
from src.db import classes as classes_repo  # noqa: E402
from src.db import frames as frames_repo  # noqa: E402
from src.db import sources as sources_repo  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.training.learning.edits import Shape, box_iou, count_edits  # noqa: E402
from src.training.learning.settings import LearnSettings  # noqa: E402
from src.training.models import ModelManager  # noqa: E402

HALF = demo.FRAMES // 2


def prepare(bench: Path, work: Path) -> tuple[Path, dict[int, list[Shape]]]:
    """A copy of the benchmark's demo project, base active, night frames emptied; returns
    {frame index: truth boxes (class names)}."""
    ref = json.loads((bench / "base.json").read_text())["ref"]
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(bench / "demo", work, ignore=shutil.ignore_patterns("learning"))
    truth: dict[int, list[Shape]] = {}
    with Project.open(work, create=False) as project:
        ModelManager(project).activate(ref)
        names = {c.id: c.name for c in classes_repo.list_classes(project.conn)}
        source = sources_repo.list_sources(project.conn)[0]
        drop = []
        for frame in frames_repo.list_frames(project.conn, source.id):
            if frame.frame_index < HALF:
                continue
            anns = annotations_repo.list_annotations(project.conn, frame.id)
            truth[frame.frame_index] = [Shape(_bbox(a), names[a.class_id]) for a in anns
                                        if a.kind in ("box", "polygon") and a.status == "accepted"]
            drop += [a.id for a in anns if a.kind != "tag"]
        annotations_repo.delete_annotations(project.conn, drop)
    return work, truth


def _bbox(ann) -> tuple[float, float, float, float]:
    if ann.kind == "box":
        return tuple(float(v) for v in ann.geometry)
    xs, ys = [p[0] for p in ann.geometry], [p[1] for p in ann.geometry]
    return (min(xs), min(ys), max(xs), max(ys))


def shapes_of(anns, names) -> list[Shape]:
    return [Shape(_bbox(a), names[a.class_id]) for a in anns if a.kind in ("box", "polygon")]


def free_point(box, others) -> tuple[float, float]:
    """A point inside `box` and inside no other box (else its centre)."""
    x1, y1, x2, y2 = box
    for fy in (0.5, 0.3, 0.7, 0.15, 0.85):
        for fx in (0.5, 0.3, 0.7, 0.15, 0.85):
            x, y = x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)
            if not any(o[0] <= x <= o[2] and o[1] <= y <= o[3] for o in others):
                return x, y
    return (x1 + x2) / 2, (y1 + y2) / 2


class User:
    """Mouse and keys on the real window."""

    def __init__(self, win, app) -> None:
        self.win, self.app = win, app
        self.view = win.annotator.view
        self.unselectable = 0

    def wait(self, cond, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there in time")
            self.app.processEvents()
            time.sleep(0.01)

    def idle(self, seconds: float) -> None:
        """A user's time to look and correct, with the event loop running."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def key(self, key, mod=Qt.KeyboardModifier.NoModifier) -> None:
        self.view.setFocus()
        QTest.keyClick(self.view, key, mod)
        self.app.processEvents()

    def point(self, x, y):
        return self.view.mapFromScene(QPointF(x, y))

    def select(self, ann, others) -> bool:
        x, y = free_point(_bbox(ann), [_bbox(o) for o in others if o.id != ann.id])
        QTest.mouseClick(self.view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, self.point(x, y))
        self.app.processEvents()
        if self.view.selected_ids() != [ann.id]:
            self.unselectable += 1
            return False
        return True

    def draw(self, box, digit: int) -> None:
        self.key(getattr(Qt.Key, f"Key_{digit}"))
        self.key(Qt.Key.Key_B)
        port = self.view.viewport()
        start, end = self.point(box[0], box[1]), self.point(box[2], box[3])
        QTest.mousePress(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
        for k in range(1, 5):
            QTest.mouseMove(port, start + (end - start) * (k / 4))
        QTest.mouseRelease(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
        self.app.processEvents()
        self.key(Qt.Key.Key_V)


def correct(user: User, truth: list[Shape], names: dict, digits: dict) -> None:
    """Turn the frame's proposals into the truth, shape by shape, as a user would."""
    win = user.win
    proposals = [a for a in win.annotator.anns if a.status == "proposed"]
    done: set[int] = set()
    for ann in proposals:
        box, cls = _bbox(ann), names[ann.class_id]
        best = max(((box_iou(box, t.box), i) for i, t in enumerate(truth) if i not in done),
                   default=(0.0, -1))
        shown = [a for a in win.annotator.anns if a.kind != "tag"]
        if not user.select(ann, shown):
            continue
        if best[0] >= 0.7:
            done.add(best[1])
            if truth[best[1]].cls != cls:
                user.key(getattr(Qt.Key, f"Key_{digits[truth[best[1]].cls]}"))
            user.key(Qt.Key.Key_A)
        else:
            user.key(Qt.Key.Key_X)
    for i, t in enumerate(truth):
        if i not in done:
            user.draw(t.box, digits[t.cls])


def run(args) -> dict:
    from src.gui.main_window import MainWindow
    from src.training.inference.loading import load_predictor

    work, truth = prepare(args.bench, args.work)
    app = QApplication.instance() or QApplication(sys.argv)
    win = MainWindow(work)
    win.resize(1400, 900)
    win.show()
    user = User(win, app)
    user.wait(lambda: win.player.image is not None)
    conn = win.session.conn
    names = {c.id: c.name for c in classes_repo.list_classes(conn)}
    objects = win.session.classes("object")
    digits = {c.name: n for n, c in enumerate(objects, 1)}
    win.learning.settings = LearnSettings(imgsz=args.imgsz, update_every=5,
                                          budget_s=args.budget_s)
    win.player.seek(HALF)
    user.wait(lambda: win.player.index == HALF and win.annotator.frame is not None)
    with Project.open(work, create=False) as side:
        _, base = load_predictor(side, "active", device="cpu")
    base.conf = win.learning.settings.conf
    toggle = win.learning_toolbar.widgetForAction(win.actions["learn_toggle"])
    QTest.mouseClick(toggle, Qt.MouseButton.LeftButton)
    user.wait(lambda: win.learning.learner is not None)
    rows = []
    t0 = time.perf_counter()
    for n in range(args.frames):
        index = win.player.index
        user.wait(lambda: win.annotator.frame is not None      # proposed when it was shown,
                  and not win.learning.proposing)             # in a worker
        proposed = shapes_of([a for a in win.annotator.anns if a.status == "proposed"], names)
        gt = truth[index]
        image = win.player.image
        base_shapes = [Shape(tuple(d.box), d.class_name) for d in base.predict([image])[0].detections]
        status = win.learning.learner.status()
        rows.append(dict(n=n + 1, frame=index, edits=count_edits(proposed, gt).edits,
                         base_edits=count_edits(base_shapes, gt).edits,
                         adapter=status.adapter_in_use, t=round(time.perf_counter() - t0, 1)))
        print(json.dumps(rows[-1]), flush=True)
        if n == args.screenshot_at and args.screenshot:
            win.grab().save(str(args.screenshot))             # the proposals as they came
        correct(user, gt, names, digits)
        user.idle(args.pace)
        user.key(Qt.Key.Key_Right)
        user.key(Qt.Key.Key_Right)
        user.wait(lambda: win.player.index == index + 2 and win.annotator.position
                  and win.annotator.position[1] == index + 2)
    label = win.learning.status_label.text()
    win.learning.stop()
    win.close()
    return summary(rows, label, user.unselectable)


def summary(rows: list[dict], label: str, unselectable: int) -> dict:
    first, later = rows[:10], rows[10:]
    mean = lambda rs, k: round(statistics.mean(r[k] for r in rs), 2) if rs else None  # noqa: E731
    out = dict(frames=len(rows), status=label, unselectable=unselectable,
               first10_session=mean(first, "edits"), first10_base=mean(first, "base_edits"),
               from11_session=mean(later, "edits"), from11_base=mean(later, "base_edits"),
               from11_adapter_in_use=sum(r["adapter"] for r in later))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path("/tmp/labelloop-bench-learning"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelloop-learning-gui"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--pace", type=float, default=8.0,
                        help="seconds the user spends on a frame besides the clicks")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--budget-s", type=float, default=20.0)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--screenshot-at", type=int, default=14)
    args = parser.parse_args()
    if not (args.bench / "base.json").exists():
        sys.exit(f"no base detector in {args.bench}: run benchmarks/learning.py first")
    print(json.dumps(run(args), indent=1))


if __name__ == "__main__":
    main()
