"""Open TensorBoard: a real `tensorboard` server on 127.0.0.1 at a free port for the project's
runs/, reused while it lives and stopped when the app exits."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from PyQt6.QtCore import QThread, pyqtSignal

from src.gui.training.worker import REPO   # where `python -m src.…` resolves


_READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class TensorBoardServer:
    """One server per log folder; `start` returns at once, `wait_ready` polls (off the GUI
    thread — see TensorBoardStarter)."""

    def __init__(self, logdir: Path, log_file: Path) -> None:
        self.logdir = Path(logdir)
        self.log_file = Path(log_file)
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}/" if self.port else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server unless this one is already running; returns its URL."""
        if self.running:
            return self.url
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "src.tensorboard_child", str(os.getpid()),
                 "--logdir", str(self.logdir),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
        return self.url

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if answers(self.url):
                return True
            time.sleep(0.2)
        return False

    def last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None


class TensorBoardStarter(QThread):
    """Starts (or reuses) the server and waits until it answers, off the GUI thread."""
    ready = pyqtSignal(str)
    failed = pyqtSignal(str)

    def __init__(self, server: TensorBoardServer, parent=None) -> None:
        super().__init__(parent)
        self.server = server

    def run(self) -> None:
        try:
            url = self.server.start()
        except OSError as exc:
            self.failed.emit(f"could not start TensorBoard: {exc}")
            return
        if self.server.wait_ready():
            self.ready.emit(url)
        else:
            reason = self.server.last_log_line() or "it did not answer in time"
            self.server.stop()
            self.failed.emit(f"TensorBoard did not start: {reason} (log: {self.server.log_file})")
