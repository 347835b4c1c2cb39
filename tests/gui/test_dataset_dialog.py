"""Training › Build dataset…, the gallery's "Exclude from datasets" and Retrain active model,
through clicks and typing on a tiny real project (image folder, 64 px frames, boxes)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest
from PyQt6.QtGui import QContextMenuEvent
from PyQt6.QtWidgets import QAbstractSpinBox, QApplication, QMenu, QMessageBox

from gui_helpers import answer_modals, click_button, default_answer, fill_text
from src.data.capture import import_media
from src.data.datasets import DatasetSpec, build_dataset
from src.db import annotations as annotations_repo
from src.db import classes as classes_repo
from src.db import dataset_exclusions, model_versions, runs
from src.db.project import Project
from src.db.records import Annotation, ModelVersion, TrainingRun

pytestmark = pytest.mark.gui
W, H, N = 96, 64, 24


def _box(i: int) -> list[float]:
    x = 8 + (i * 5) % 50
    return [x, 12, x + 24, 36]


def _make_project(tmp_path, n: int = N):
    """n frames (an image folder), a 'car' box on each, a 'bike' box on every third."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(n):
        image = np.full((H, W, 3), (40 + 4 * i, 60, 90), np.uint8)
        x1, y1, x2, y2 = (int(v) for v in _box(i))
        cv2.rectangle(image, (x1, y1), (x2, y2), (30, 200, 30), -1)
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    root = tmp_path / "project"
    with Project.open(root) as project:
        _source, frames = import_media(project, folder)
        car = classes_repo.add_class(project.conn, "car", "#e6194b")
        bike = classes_repo.add_class(project.conn, "bike", "#3cb44b")
        anns = [Annotation(f.id, car.id, "box", _box(i)) for i, f in enumerate(frames)]
        anns += [Annotation(f.id, bike.id, "box", [60, 40, 80, 60])
                 for i, f in enumerate(frames) if i % 3 == 0]
        annotations_repo.add_annotations(project.conn, anns)
    return root


@pytest.fixture
def project_dir(tmp_path):
    return _make_project(tmp_path)


@pytest.fixture
def win(qtbot, project_dir):
    from src.gui.main_window import MainWindow
    window = MainWindow(project_dir)
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.training.shutdown()
    if window.training.train_dialog is not None:
        window.training.train_dialog.close()
    window.close()


def _open_dialog(qtbot, win):
    win.actions["build_dataset"].trigger()
    dialog = win.training.datasets.dialog
    qtbot.waitExposed(dialog)
    return dialog


def _type_number(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    QTest.keyClick(spin.lineEdit(), Qt.Key.Key_Delete)
    QTest.keyClicks(spin.lineEdit(), text)
    QTest.keyClick(spin.lineEdit(), Qt.Key.Key_Tab)


def _manifest_frames(project_dir, ref_path: str) -> set[int]:
    manifest = json.loads((project_dir / ref_path / "manifest.json").read_text())
    return {e["frame_id"] for e in manifest["entries"]}


def _exclude_by_right_click(qtbot, win, rows: list[int]) -> None:
    view = win.gallery.view
    qtbot.waitUntil(lambda: win.gallery.model.rowCount() >= max(rows) + 1)
    for k, row in enumerate(rows):
        rect = view.visualRect(win.gallery.model.index(row))
        modifier = Qt.KeyboardModifier.ControlModifier if k else Qt.KeyboardModifier.NoModifier
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())
    point = view.visualRect(win.gallery.model.index(rows[0])).center()
    # What the platform sends on a right click (QTest's click does not synthesize it).
    QApplication.sendEvent(view.viewport(), QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, point, view.viewport().mapToGlobal(point)))
    qtbot.waitUntil(lambda: win.gallery.exclusion_menu.menu is not None
                    and win.gallery.exclusion_menu.menu.isVisible())
    menu = win.gallery.findChild(QMenu, "galleryContextMenu")
    action = next(a for a in menu.actions() if a.objectName() == "excludeFromDatasetsAction")
    assert action.text().startswith(f"Exclude from datasets ({len(rows)} frame")
    action.trigger()
    menu.close()


def test_ratios_must_sum_to_one_then_build_reports_and_trains_on_it(qtbot, win, project_dir):
    _exclude_by_right_click(qtbot, win, [0, 1])
    excluded = dataset_exclusions.excluded_frame_ids(win.session.conn)
    assert excluded == {win.gallery.model.rows[r].frame.id for r in (0, 1)}
    tooltip = win.gallery.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "excluded from datasets" in tooltip

    dialog = _open_dialog(qtbot, win)
    assert "2 frame(s)" in dialog.excluded_note.text()
    fill_text(dialog.name, "tiny")
    val = dialog.split[1]
    assert isinstance(val, QAbstractSpinBox)
    _type_number(qtbot, val, "0.5")
    qtbot.waitUntil(lambda: not dialog.build_button.isEnabled())
    assert "sum to 1.3, not 1" in dialog.problem.text()
    _type_number(qtbot, val, "0.2")
    qtbot.waitUntil(dialog.build_button.isEnabled)
    assert dialog.problem.text() == ""

    dialog.group_by.setFocus()
    qtbot.keyClick(dialog.group_by, Qt.Key.Key_End)     # "none": 22 frames, blocks of 10 too coarse
    assert dialog.group_by.currentText() == "none"
    click_button(dialog.oversample)                     # oversampling on: no factor > 1 yet
    assert "no class has a factor above 1" in dialog.problem.text()
    _type_number(qtbot, dialog.classes.findChild(QAbstractSpinBox, "factorSpin_bike"), "3")
    qtbot.waitUntil(dialog.build_button.isEnabled)
    click_button(dialog.build_button)
    qtbot.waitUntil(lambda: dialog.report_box.isVisible() or "failed" in dialog.problem.text(),
                    timeout=60000)
    assert dialog.report_box.isVisible(), dialog.problem.text()
    table = dialog.report_table
    cells = {table.verticalHeaderItem(r).text(): [table.item(r, c).text() for c in range(4)]
             for r in range(table.rowCount())}
    assert cells["bike"][0].endswith("augmented")   # 2 copies of each training bike image
    rows = {name: [int(text.split()[0]) for text in texts] for name, texts in cells.items()}
    assert set(rows) == {"car", "bike", "(images)"}
    assert rows["car"][3] == N - 2 and rows["(images)"][3] == N - 2   # 2 frames excluded
    assert rows["bike"][3] == sum(1 for i in range(2, N) if i % 3 == 0)
    assert all(sum(v[:3]) == v[3] for v in rows.values())
    assert not _manifest_frames(project_dir, "datasets/tiny/v1") & excluded

    click_button(dialog.train_button)
    train = win.training.train_dialog
    qtbot.waitUntil(lambda: train is not None and train.isVisible())
    assert train.dataset.currentData() == "tiny:v1"
    assert train.template.currentText() == "Detection (YOLO)"


def test_preview_grid_shows_n_augmented_copies(qtbot, win):
    dialog = _open_dialog(qtbot, win)
    _type_number(qtbot, dialog.preview_n, "4")
    qtbot.waitUntil(lambda: len(dialog.preview.labels) == 4
                    and "4 copies" in dialog.preview_status.text(), timeout=30000)
    images = [label.pixmap().toImage() for label in dialog.preview.labels]
    assert all(not image.isNull() and image.width() > 32 for image in images)
    assert len({bytes(image.constBits().asarray(image.sizeInBytes())) for image in images}) > 1
    dialog.pipeline.setCurrentText("heavy")
    qtbot.waitUntil(lambda: "(heavy)" in dialog.preview_status.text(), timeout=30000)
    assert len(dialog.preview.labels) == 4


def _active_model_on(project_dir) -> int:
    with Project.open(project_dir) as project:
        record, _ = build_dataset(project, DatasetSpec(
            name="base", task="detect", group_by="none", seed=7, mapping={"bike": "bicycle"}))
        run = runs.add_run(project.conn, TrainingRun(        # the run that made it
            name="det", task="detect", model_type="yolo", dataset_id=record.id,
            status="completed", config={"epochs": 7, "batch": 3, "imgsz": 96, "lr": 0.002,
                                        "patience": 4, "lora": {"enabled": True, "rank": 4,
                                                                "alpha": 8.0, "layers": "head"}}))
        model = model_versions.add_model_version(project.conn, ModelVersion(
            task="detect", name="det", version=1, path="models/detect/det/v1/best.pt",
            model_type="yolo", dataset_id=record.id, is_active=True, run_id=run.id,
            dataset={"name": "base", "version": 1}))
        model_versions.add_model_version(project.conn, ModelVersion(   # a second task's model
            task="segment", name="seg", version=1, path="models/segment/seg/v1/best.pt",
            model_type="yolo", dataset_id=record.id, is_active=True))
        return model.id


def test_retrain_builds_a_new_version_and_opens_the_train_dialog(qtbot, tmp_path):
    project_dir = _make_project(tmp_path)
    model_id = _active_model_on(project_dir)
    from src.gui.main_window import MainWindow
    win = MainWindow(project_dir)
    qtbot.addWidget(win)
    win.show()
    try:
        asked = []

        def choose_detect(dialog):              # several tasks have one: which to retrain
            asked.extend(dialog.comboBoxItems())
            return default_answer(dialog)       # the first, detect
        log = answer_modals(qtbot, win.actions["retrain"].trigger, choose_detect,
                            default_answer)
        assert [a.split(":")[0] for a in asked] == ["detect", "segment"]
        assert "Retraining detect-det-v1" in log[1], log
        dialog = win.training.datasets.dialog
        qtbot.waitUntil(lambda: win.training.train_dialog is not None
                        and win.training.train_dialog.isVisible(), timeout=60000)
        train = win.training.train_dialog
        assert train.dataset.currentData() == "base:v2"
        assert train.base.currentData() == f"model:{model_id}"
        assert "the settings of run" in dialog.note.text()     # ... and they are filled in
        assert (train.epochs.value(), train.batch.value(), train.imgsz.value()) == (7, 3, 96)
        assert train.lr.value() == pytest.approx(0.002) and train.patience.value() == 4
        assert train.lora.isChecked() and train.lora_rank.value() == 4
        assert train.lora_layers.currentText() == "head"
        assert not dialog.form.isEnabled() and dialog.report_box.isVisible()
        assert dialog.seed.value() == 7 and dialog.group_by.currentText() == "none"
        assert [r[2] for r in dialog.classes.rows()] == ["car", "bicycle"]
        config = json.loads((project_dir / "datasets/base/v2/manifest.json").read_text())["config"]
        assert config["seed"] == 7 and config["group_by"] == "none"
    finally:
        win.training.shutdown()
        if win.training.train_dialog is not None:
            win.training.train_dialog.close()
        win.close()


def test_retrain_without_an_active_model_says_so(qtbot, win):
    seen = []

    def answer(box):
        seen.append(box.text() if isinstance(box, QMessageBox) else type(box).__name__)
        return default_answer(box)
    answer_modals(qtbot, win.actions["retrain"].trigger, answer)
    assert seen and "no active model" in seen[0]
    assert win.training.datasets.dialog is None



def _choose_by_keys(combo, text: str) -> None:
    """Move a combo to the entry starting with `text` with the arrow keys, as keyboard
    users do (typing would open the list at the first space)."""
    row = next(i for i in range(combo.count()) if combo.itemText(i).startswith(text))
    key = Qt.Key.Key_Down if row > combo.currentIndex() else Qt.Key.Key_Up
    for _ in range(abs(row - combo.currentIndex())):
        QTest.keyClick(combo, key)
    assert combo.currentIndex() == row


def test_the_gallery_filter_is_a_frame_choice(qtbot, win, project_dir):
    gallery = win.gallery
    _choose_by_keys(gallery.filter_combo, "Class: bike")
    qtbot.waitUntil(lambda: gallery.model.rowCount() == len(range(0, N, 3)))
    bike_frames = {s.frame.id for s in gallery.model.rows}
    dialog = _open_dialog(qtbot, win)
    labels = [dialog.frames.itemText(i) for i in range(dialog.frames.count())]
    assert labels[0] == "All frames" and labels[-1].startswith("Gallery filter: Class: bike")
    _choose_by_keys(dialog.frames, "Gallery filter")
    assert dialog.frames.currentData() == sorted(bike_frames)
    fill_text(dialog.name, "bikes")
    _choose_by_keys(dialog.group_by, "none")
    _type_number(qtbot, dialog.min_per_class, "0")
    click_button(dialog.build_button)
    qtbot.waitUntil(lambda: dialog.report_box.isVisible() or "failed" in dialog.problem.text(),
                    timeout=60000)
    assert dialog.report_box.isVisible(), dialog.problem.text()
    assert _manifest_frames(project_dir, "datasets/bikes/v1") == bike_frames


def test_every_button_of_the_dialog_survives_a_click(qtbot, win):
    """Each button clicked (twice round, new ones too), modal questions answered: the dialog
    and the window stay alive and the store sound."""
    from gui_helpers import ModalAnswerer, clickable_buttons, integrity_check, wait_no_modal
    dialog = _open_dialog(qtbot, win)
    _choose_by_keys(dialog.group_by, "none")        # 24 frames: blocks of 10 are too coarse
    clicked: list[str] = []
    with ModalAnswerer() as answerer:
        for _round in range(2):
            buttons = [b for b in clickable_buttons(dialog)
                       if b is not dialog.close_button and b.objectName() not in clicked]
            for button in buttons:
                if button.isVisible() and button.isEnabled():
                    clicked.append(button.objectName())
                    click_button(button)
                    wait_no_modal(qtbot)
            qtbot.waitUntil(lambda: not dialog._building, timeout=60000)
        click_button(dialog.close_button)
    assert not answerer.errors, answerer.errors
    assert {"buildDatasetButton", "trainOnDatasetButton", "addSourceButton"} <= set(clicked)
    assert not dialog.isVisible() and win.isVisible()
    assert integrity_check(win.session.project.db_path) == []


def test_excluding_frames_is_undone_and_redone_with_the_keys(qtbot, win):
    first = win.gallery.model.rows[0].frame.id
    _exclude_by_right_click(qtbot, win, [0, 1])
    ids = {win.gallery.model.rows[r].frame.id for r in (0, 1)}
    assert dataset_exclusions.excluded_frame_ids(win.session.conn) == ids
    assert win.actions["undo"].text().startswith("&Undo Exclude 2 frame(s)")
    win.annotator.view.setFocus()
    qtbot.keyClick(win.annotator.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert dataset_exclusions.excluded_frame_ids(win.session.conn) == set()
    qtbot.waitUntil(lambda: "excluded from datasets" not in
                    win.gallery.model.index(0).data(Qt.ItemDataRole.ToolTipRole))
    qtbot.keyClick(win.annotator.view, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert dataset_exclusions.excluded_frame_ids(win.session.conn) == ids
    assert first in win.gallery.model.excluded
