"""`run_gui(project_dir)`: the desktop app's entry point (`python main.py [--project DIR]`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from PyQt6.QtWidgets import QApplication

from src.gui.guard import ErrorReporter
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
    reporter = install_error_reporter(window)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()      # also when the loop was quit without closing the window
        reporter.uninstall()


def install_error_reporter(window: MainWindow) -> ErrorReporter:
    """Route every uncaught exception (any thread) to a log and an error dialog on `window`."""
    reporter = ErrorReporter(lambda: error_log_dir(window), window.recover_from_error, window)
    reporter.install()
    return reporter


def error_log_dir(window: MainWindow) -> Path:
    """`<project>/logs/`, or the settings folder's `logs/` while no project is open."""
    session = window.session
    if session is not None:
        return session.project.root / "logs"
    settings_dir = os.environ.get("LABELLOOP_SETTINGS_DIR")
    base = Path(settings_dir) if settings_dir else Path.home() / ".config" / "labelloop"
    return base / "logs"
