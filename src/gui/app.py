"""`run_gui(project_dir)`: the desktop app's entry point (`python main.py [--project DIR]`)."""
from __future__ import annotations

import sys
from pathlib import Path

from PyQt6.QtWidgets import QApplication

from src.gui.main_window import MainWindow


def run_gui(project_dir: Path) -> int:
    """Open the main window on `project_dir` (created if missing) and run the event loop."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("LabelLoop")
    window = MainWindow(Path(project_dir))
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()      # also when the loop was quit without closing the window
