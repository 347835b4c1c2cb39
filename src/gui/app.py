"""`run_gui(project_dir)`: the desktop app's entry point (`python main.py [--project DIR]`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from PyQt6.QtWidgets import QApplication

from src.gui.main_window import MainWindow


def _drop_opencv_qt_paths() -> None:
    """The opencv-python wheel (not -headless) points QT_QPA_PLATFORM_PLUGIN_PATH and
    QT_QPA_FONTDIR at its own bundled Qt when cv2 is imported; PyQt6 then loads a foreign
    xcb plugin and aborts on a real display. Qt reads them when QApplication is built."""
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name, "")
        if f"{os.sep}cv2{os.sep}" in value:
            del os.environ[name]


def run_gui(project_dir: Path) -> int:
    """Open the main window on `project_dir` (created if missing) and run the event loop."""
    _drop_opencv_qt_paths()
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("LabelLoop")
    window = MainWindow(Path(project_dir))
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()      # also when the loop was quit without closing the window
