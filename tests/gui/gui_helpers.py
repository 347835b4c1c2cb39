"""Mouse helpers for driving the annotator view like a user."""
from __future__ import annotations

from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtTest import QTest


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
