"""Mouse helpers for driving the annotator view like a user."""
from __future__ import annotations

from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtTest import QTest

# The tiny synthetic video of the GUI fixtures (tests/gui/conftest.py).
VIDEO_W, VIDEO_H, VIDEO_FRAMES, VIDEO_FPS = 96, 64, 40, 10.0


def view_point(view, x: float, y: float) -> QPoint:
    """The viewport pixel showing image point (x, y)."""
    return view.mapFromScene(QPointF(x, y))


def drag(view, start: QPoint, end: QPoint, steps: int = 4,
         button=Qt.MouseButton.LeftButton) -> None:
    port = view.viewport()
    QTest.mousePress(port, button, Qt.KeyboardModifier.NoModifier, start)
    for k in range(1, steps + 1):
        QTest.mouseMove(port, start + (end - start) * (k / steps))
    QTest.mouseRelease(port, button, Qt.KeyboardModifier.NoModifier, end)


def click(view, point: QPoint, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mouseClick(view.viewport(), button, Qt.KeyboardModifier.NoModifier, point)


def wait_frame(qtbot, win, index: int) -> None:
    """Wait until the player shows frame `index`."""
    qtbot.waitUntil(lambda: win.player.index == index and win.annotator.position[1] == index)
