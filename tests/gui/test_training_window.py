"""The training window, through clicks and keys: the train dialog validates inline and starts a
real tiny training in a child process; the monitor charts it live, pauses, resumes, cancels,
shows a killed child as a failure and resumes it with Retry; TensorBoard really serves."""
from __future__ import annotations

import numpy as np
import psutil
import pytest
import yaml
from PIL import Image
from PyQt6.QtCore import Qt

from src.db import datasets as datasets_repo
from src.db import model_versions, runs
from src.db.project import Project
from src.db.records import DatasetRecord
from src.gui.training.monitor import TrainingMonitor
from src.gui.training.tensorboard import TensorBoardServer, answers
from src.gui.training.train_dialog import CONFIGS, TrainDialog
from src.gui.training.worker import TrainingRequest

pytestmark = pytest.mark.gui
TRAIN_S = 240_000           # a loaded 2-core CI machine starts torch slowly
TINY = ["model=test_resnet", "imgsz=32", "batch=4", "workers=0", "device=cpu",
        "tensorboard=false", "patience=0"]


def _tiny_classify_dataset(project: Project) -> DatasetRecord:
    """A 2-class ImageFolder snapshot registered in the store (12 train / 6 val, 32 px)."""
    root = project.root / "datasets" / "tiny" / "v1"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 3)):
        for name, colour in (("red", (220, 40, 40)), ("blue", (40, 60, 220))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.array(colour, float) + rng.normal(0, 25, (32, 32, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    (root / "data.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "train",
                                                    "val": "val", "names": ["blue", "red"]}))
    return datasets_repo.add_dataset(project.conn, DatasetRecord(
        name="tiny", version=1, task="crops", path=project.relpath(root)))


@pytest.fixture
def tiny_project(tmp_path):
    with Project.open(tmp_path / "project") as project:
        _tiny_classify_dataset(project)
    return tmp_path / "project"


@pytest.fixture
def monitors():
    """Monitors a test opened; whatever still trains at the end is cancelled and awaited, so
    closing them asks nothing and no thread outlives the test."""
    opened: list[TrainingMonitor] = []
    yield opened
    for monitor in opened:
        if monitor.running:
            monitor.worker.cancel()
            if not monitor.worker.wait(60_000):
                monitor.worker.kill()
                monitor.worker.wait(30_000)
        if monitor.running:              # never leave a question open: it would block here
            monitor.worker.detach()
            monitor.worker.wait(5_000)
        else:
            monitor.close()


def _monitor(qtbot, monitors, request: TrainingRequest) -> TrainingMonitor:
    monitor = TrainingMonitor(request)
    qtbot.addWidget(monitor)
    monitors.append(monitor)
    monitor.show()
    monitor.start()
    return monitor


def _finish(qtbot, monitor: TrainingMonitor) -> None:
    """Until the child ended and its last signal (queued from the worker thread) arrived."""
    qtbot.waitUntil(lambda: not monitor.running and monitor.status not in ("starting", "running"),
                    timeout=TRAIN_S)


def _replace_text(qtbot, spin, text: str) -> None:
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, text)


def _type_lines(qtbot, editor, lines: list[str]) -> None:
    for line in lines:
        qtbot.keyClicks(editor, line)
        qtbot.keyClick(editor, Qt.Key.Key_Return)


@pytest.mark.slow
def test_dialog_validates_inline_then_trains_with_live_charts(qtbot, tiny_project, monitors):
    with Project.open(tiny_project) as project:
        dialog = TrainDialog(tiny_project, datasets_repo.list_datasets(project.conn), [])
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.start_button.isEnabled()          # detection: no detect dataset here
    assert "no dataset" in dialog.problem.text()
    dialog.template.setFocus()
    qtbot.keyClicks(dialog.template, "Crop")             # keyboard search in the combo
    assert dialog.template_path == CONFIGS / "crop_classifier.yaml"
    assert dialog.dataset.currentData() == "tiny:v1"
    _replace_text(qtbot, dialog.epochs, "2")
    _type_lines(qtbot, dialog.advanced, [*TINY, "lora.rank=0"])
    assert not dialog.start_button.isEnabled() and "lora.rank" in dialog.problem.text()
    qtbot.keyClick(dialog.advanced, Qt.Key.Key_Backspace)   # the empty last line
    for _ in range(len("lora.rank=0")):
        qtbot.keyClick(dialog.advanced, Qt.Key.Key_Backspace)
    assert dialog.start_button.isEnabled(), dialog.problem.text()

    started = []
    dialog.train_requested.connect(lambda request: started.append(_monitor(qtbot, monitors, request)))
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    (monitor,) = started
    assert "epochs=2" in monitor.request.overrides
    _finish(qtbot, monitor)
    assert monitor.status == "completed", monitor.state.text()
    monitor._refresh()
    assert monitor.bar.value() == monitor.bar.maximum()
    points = monitor.charts.points("metric", "balanced_accuracy")
    assert [x for x, _ in points] == [1.0, 2.0]          # one point per epoch
    assert monitor.charts.points("loss", "batch loss")   # batch losses between them
    assert monitor.charts.points("lr", "lr")
    assert monitor.charts.lr_plot.getPlotItem().legend is None    # nothing covers its line
    assert monitor.charts.loss_plot.getPlotItem().legend is not None
    assert "balanced_accuracy" in monitor.metrics_label.text()
    assert monitor.report.isVisible()
    with Project.open(tiny_project) as project:
        (version,) = model_versions.list_model_versions(project.conn)
        assert version.run_id == monitor.run_id
    qtbot.mouseClick(monitor.set_active_button, Qt.MouseButton.LeftButton)
    assert "active crop_classifier model" in monitor.state.text()


@pytest.mark.slow
def test_pause_holds_resume_continues_cancel_keeps_a_checkpoint(qtbot, tiny_project, monitors):
    monitor = _monitor(qtbot, monitors, TrainingRequest(tiny_project, CONFIGS / "crop_classifier.yaml",
                                              "tiny", [*TINY, "epochs=200"]))
    qtbot.waitUntil(lambda: bool(monitor.progress.batch_loss), timeout=TRAIN_S)
    qtbot.mouseClick(monitor.pause_button, Qt.MouseButton.LeftButton)
    with Project.open(tiny_project) as project:          # the child records its hold
        qtbot.waitUntil(lambda: runs.get_run(project.conn, monitor.run_id).status == "paused",
                        timeout=60_000)
    # The child writes 'paused' to the store once it holds; the batch it finished just before
    # may still be on its way through the pipe to the monitor (a CI run failed on that race).
    qtbot.wait(1500)
    held = len(monitor.progress.batch_loss)
    qtbot.wait(3000)
    assert len(monitor.progress.batch_loss) == held, "the child trained on while paused"
    assert monitor.resume_button.isEnabled() and not monitor.pause_button.isEnabled()

    qtbot.mouseClick(monitor.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(monitor.progress.batch_loss) > held, timeout=60_000)
    qtbot.mouseClick(monitor.cancel_button, Qt.MouseButton.LeftButton)
    _finish(qtbot, monitor)
    assert monitor.status == "cancelled" and monitor.retry_button.isVisible()
    with Project.open(tiny_project) as project:
        run = runs.get_run(project.conn, monitor.run_id)
        assert run.status == "cancelled"
        assert any(project.abspath(run.run_dir).rglob("last*")), "no checkpoint kept"


@pytest.mark.slow
def test_a_killed_child_is_a_failure_and_retry_resumes_it(qtbot, tiny_project, monitors):
    monitor = _monitor(qtbot, monitors, TrainingRequest(tiny_project, CONFIGS / "crop_classifier.yaml",
                                              "tiny", [*TINY, "epochs=3"]))
    qtbot.waitUntil(lambda: monitor.progress.checkpoint_epoch is not None, timeout=TRAIN_S)
    psutil.Process(monitor.worker.pid).kill()
    _finish(qtbot, monitor)
    assert monitor.status == "failed" and "killed" in monitor.state.text()
    assert monitor.isVisible() and monitor.retry_button.isVisible()

    qtbot.mouseClick(monitor.retry_button, Qt.MouseButton.LeftButton)
    assert monitor.request.resume_run_id == monitor.run_id
    _finish(qtbot, monitor)
    assert monitor.status == "completed", monitor.state.text()
    with Project.open(tiny_project) as project:
        assert runs.get_run(project.conn, monitor.run_id).status == "completed"
        assert [e.epoch for e in runs.list_epochs(project.conn, monitor.run_id)] == [0, 1, 2]


@pytest.mark.slow
def test_tensorboard_serves_the_runs_on_loopback_and_stops(tmp_path):
    server = TensorBoardServer(tmp_path / "runs", tmp_path / "logs" / "tensorboard.log")
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert server.wait_ready(120), server.last_log_line()
        assert answers(url) and server.start() == url       # reused while it runs
    finally:
        server.stop()
    assert not answers(url)


@pytest.mark.slow
def test_tensorboard_ends_when_the_window_process_dies(tmp_path):
    """A window killed without its shutdown must not leave TensorBoard holding a port."""
    import subprocess
    import sys
    import time

    from src.gui.training.tensorboard import free_port

    window = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    child = subprocess.Popen(
        [sys.executable, "-m", "src.tensorboard_child", str(window.pid),
         "--logdir", str(tmp_path), "--host", "127.0.0.1", "--port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        assert child.poll() is None, "TensorBoard ended while its window was alive"
        window.kill()
        window.wait()
        assert child.wait(timeout=30) == 0
    finally:
        for proc in (child, window):
            if proc.poll() is None:
                proc.kill()
