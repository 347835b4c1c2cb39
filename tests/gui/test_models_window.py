"""Training › Models… through clicks: activating a version updates the status bar; two real
versions compared (re-evaluated) fill a side-by-side table; ONNX export writes a valid file;
an imported .pt stays untrusted (unusable) until the trust dialog is confirmed."""
from __future__ import annotations

import shutil

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import (QDialogButtonBox, QFileDialog, QInputDialog, QLineEdit,
                             QMessageBox)

from gui_helpers import (ModalAnswerer, answer_modals, click_button, dialog_button, fill_text,
                         wait_no_modal)
from src.db import model_versions
from src.db.project import Project
from src.gui.training.models_dialog import ModelsDialog, TrustDialog
from src.gui.training.train_dialog import CONFIGS
from test_training_window import TINY, _tiny_classify_dataset

pytestmark = pytest.mark.gui
JOB_MS = 120_000


@pytest.fixture(scope="module")
def two_versions_template(tmp_path_factory):
    """A project with two real tiny crop classifiers (one epoch each), trained in-process;
    its models/ lives inside it, so a copy of the folder is a whole independent project."""
    from src.training.config import load_config
    from src.training.runner import start_training
    root = tmp_path_factory.mktemp("models") / "project"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELLOOP_MODELS", str(root / "models"))
        mp.setenv("LABELLOOP_LOCK_DIR", str(root.parent / "lock"))
        with Project.open(root) as project:
            _tiny_classify_dataset(project)
            for seed in (0, 1):
                cfg = load_config(CONFIGS / "crop_classifier.yaml",
                                  [*TINY, "epochs=1", f"seed={seed}"])
                assert start_training(project, cfg, "tiny").status == "completed"
    return root


@pytest.fixture
def project_dir(two_versions_template, tmp_path):
    target = tmp_path / "project"
    shutil.copytree(two_versions_template, target)
    return target


@pytest.fixture
def main_window(qtbot, project_dir):
    from src.gui.main_window import MainWindow
    win = MainWindow(project_dir)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def models_dialog(qtbot, project_dir):
    project = Project.open(project_dir)
    dialog = ModelsDialog(project)
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    dialog.shutdown()
    project.close()


def click_row(qtbot, table, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    rect = table.visualItemRect(table.item(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def row_of(dialog: ModelsDialog, version_id: int) -> int:
    return [v.id for v in dialog.versions].index(version_id)


def choose_file(path):
    """Answer a file dialog by typing the path and pressing Enter."""
    def answer(dialog):
        assert isinstance(dialog, QFileDialog), type(dialog)
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        fill_text(edit, str(path))
        QTest.keyClick(edit, Qt.Key.Key_Return)
        return f"chose {path}"
    return answer


def trust_answer(yes: bool):
    def answer(dialog):
        assert isinstance(dialog, TrustDialog), type(dialog)
        assert "runs whatever code" in dialog.text()
        click_button(dialog.button(QMessageBox.StandardButton.Yes if yes
                                   else QMessageBox.StandardButton.No))
        return f"trust {yes}"
    return answer


def test_setting_a_version_active_in_the_dialog_updates_the_status_bar(qtbot, main_window):
    label = main_window.status.active_models_label
    with Project.open(main_window.session.project.root) as project:
        first, second = model_versions.list_model_versions(project.conn)
    assert first.is_active and not second.is_active       # the first trained became active
    assert label.text() == f"models: crop_classifier: {first.name} v{first.version}"

    qtbot.mouseClick(label, Qt.MouseButton.LeftButton)     # the status bar opens the dialog
    dialog = main_window.training.models_dialog
    assert dialog is not None and dialog.isVisible()
    click_row(qtbot, dialog.table, row_of(dialog, second.id))
    assert dialog.buttons["setActiveButton"].isEnabled()
    qtbot.mouseClick(dialog.buttons["setActiveButton"], Qt.MouseButton.LeftButton)
    assert label.text() == f"models: crop_classifier: {second.name} v{second.version}"
    assert dialog.table.item(row_of(dialog, second.id), 0).text() == "● active"
    assert dialog.table.item(row_of(dialog, first.id), 0).text() == ""

    # deleting the active version is refused, with the reason
    click_row(qtbot, dialog.table, row_of(dialog, second.id))
    log = answer_modals(qtbot, lambda: qtbot.mouseClick(dialog.buttons["deleteButton"],
                                                        Qt.MouseButton.LeftButton))
    assert any("is in use" in line and "active crop_classifier" in dialog.message.text()
               for line in log), log
    with Project.open(main_window.session.project.root) as project:
        assert len(model_versions.list_model_versions(project.conn)) == 2


def test_comparing_two_versions_shows_them_side_by_side(qtbot, models_dialog):
    dialog = models_dialog
    click_row(qtbot, dialog.table, 0)
    click_row(qtbot, dialog.table, 1, Qt.KeyboardModifier.ControlModifier)
    assert len(dialog.selected_ids()) == 2
    qtbot.mouseClick(dialog.buttons["compareButton"], Qt.MouseButton.LeftButton)
    assert dialog.progress.isVisible()                     # the work runs in the background
    qtbot.waitUntil(lambda: not dialog.busy and dialog.comparison.result is not None,
                    timeout=JOB_MS)
    table = dialog.comparison.table
    assert table.columnCount() == 2
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert "balanced_accuracy" in rows and "ms per image" in rows
    assert any(r.startswith("blue (") for r in rows) and any(r.startswith("red (") for r in rows)
    for column in range(2):
        assert 0.0 <= float(dialog.comparison.cell_text("balanced_accuracy", column)) <= 1.0
    assert "tiny v1" in dialog.comparison.title.text()


def test_export_onnx_writes_a_valid_model(qtbot, models_dialog, tmp_path):
    import onnx
    dialog, target = models_dialog, tmp_path / "out" / "classifier.onnx"
    target.parent.mkdir()
    click_row(qtbot, dialog.table, 0)
    answer_modals(qtbot, lambda: qtbot.mouseClick(dialog.buttons["exportOnnxButton"],
                                                  Qt.MouseButton.LeftButton),
                  choose_file(target))
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_MS)
    assert f"wrote {target}" in dialog.message.text()
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["images"]


@pytest.mark.slow
def test_an_imported_pt_is_untrusted_until_confirmed(qtbot, models_dialog, tmp_path):
    from ultralytics import YOLO
    weights = tmp_path / "from-a-colleague.pt"
    YOLO("yolov8n.yaml").save(str(weights))                # a real ultralytics checkpoint
    dialog = models_dialog
    before = len(dialog.versions)
    answers = [choose_file(weights), _accept_task, trust_answer(False)]
    with ModalAnswerer(lambda d: answers.pop(0)(d)) as answerer:   # the last after the job
        qtbot.mouseClick(dialog.buttons["importButton"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not answers and not dialog.busy, timeout=JOB_MS)
        wait_no_modal(qtbot)
    assert not answerer.errors, answerer.errors
    assert len(dialog.versions) == before + 1
    (imported,) = [v for v in dialog.versions if v.origin == "imported"]
    row = row_of(dialog, imported.id)
    assert dialog.table.item(row, 7).text() == "⚠ untrusted"
    assert dialog.selected_ids() == [imported.id]
    assert not dialog.buttons["setActiveButton"].isEnabled()     # untrusted: unusable
    assert not dialog.buttons["exportOnnxButton"].isEnabled()

    answer_modals(qtbot, lambda: qtbot.mouseClick(dialog.buttons["trustButton"],
                                                  Qt.MouseButton.LeftButton),
                  trust_answer(True))
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_MS)
    assert dialog.table.item(row_of(dialog, imported.id), 7).text() == "trusted"
    click_row(qtbot, dialog.table, row_of(dialog, imported.id))
    assert dialog.buttons["setActiveButton"].isEnabled()
    qtbot.mouseClick(dialog.buttons["setActiveButton"], Qt.MouseButton.LeftButton)
    with Project.open(dialog.project.root) as project:
        assert model_versions.active_model(project.conn, "detect").id == imported.id


def _accept_task(dialog) -> str:
    assert isinstance(dialog, QInputDialog) and dialog.comboBoxItems()[0] == "detect"
    click_button(dialog_button(dialog, QDialogButtonBox.ButtonRole.AcceptRole))
    return "task detect"


def test_a_finished_runs_monitor_exports_its_version_through_the_dialog(qtbot, main_window,
                                                                        tmp_path):
    from src.db import runs
    win, target = main_window, tmp_path / "from-monitor.onnx"
    run = runs.get_run(win.session.conn, 2)
    monitor = win.training.follow(run)        # as reattached: it reads the run's own files
    qtbot.waitUntil(lambda: monitor.status == "completed", timeout=JOB_MS)
    assert monitor.export_button.isVisible() and monitor.set_active_button.isVisible()
    answer_modals(qtbot, lambda: qtbot.mouseClick(monitor.export_button,
                                                  Qt.MouseButton.LeftButton),
                  choose_file(target))
    dialog = win.training.models_dialog
    (version,) = [v for v in dialog.versions if v.run_id == run.id]
    assert dialog.selected_ids() == [version.id]
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_MS)
    assert target.is_file() and f"wrote {target}" in dialog.message.text()
