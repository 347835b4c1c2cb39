"""Child process of test_kill.py: the real main window, offscreen, drawing boxes like a user.

Prints "committed <id>" once each box is stored (the drag's release returned, so the store
call committed), and keeps going until it is killed. Usage: kill_driver.py PROJECT SEED
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PyQt6.QtWidgets import QApplication  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402

from gui_helpers import drag, view_point  # noqa: E402
from src.gui.main_window import MainWindow  # noqa: E402


def main() -> int:
    project, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    app = QApplication(sys.argv)
    window = MainWindow(project)
    window.resize(800, 600)
    window.show()
    while window.player.image is None:
        QTest.qWait(10)
    view = window.annotator.view
    print("ready", flush=True)
    while True:
        x, y = rng.uniform(2, 50), rng.uniform(2, 30)
        before = set(view.items_by_id)
        drag(view, view_point(view, x, y), view_point(view, x + rng.uniform(5, 40),
                                                      y + rng.uniform(5, 30)))
        for ann_id in sorted(set(view.items_by_id) - before):
            print(f"committed {ann_id}", flush=True)
        if rng.random() < 0.3:
            window.player.step(1)
            target = window.player.target
            while window.player.index != target:
                QTest.qWait(2)
        app.processEvents()


if __name__ == "__main__":
    sys.exit(main())
