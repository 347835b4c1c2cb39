"""File › Export offers a crops dataset version as image folders (and only that), and the
project in the annotation formats again once it is chosen back."""
from __future__ import annotations

import csv
import json

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest

from src.db import annotations as ann_repo
from src.db.records import Annotation

pytestmark = [pytest.mark.gui, pytest.mark.slow]   # the dataset builder loads albumentations


def _press(widget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _formats(dialog) -> list[str]:
    return [dialog.format_combo.itemText(i) for i in range(dialog.format_combo.count())]


def _choose(combo, key: Qt.Key) -> None:
    """Open the combo, move its selection one row with `key` and accept, as a user does."""
    combo.showPopup()
    QTest.keyClick(combo.view(), key)
    QTest.keyClick(combo.view(), Qt.Key.Key_Return)


def test_export_a_crops_version_as_image_folders(window, gui_project, qtbot, tmp_path):
    from src.data.capture import capture_frames
    from src.data.datasets import DatasetSpec, build_dataset
    project, source = gui_project
    car, person = window.session.classes()[:2]
    frames = capture_frames(project, source, range(0, 40, 4))
    ann_repo.add_annotations(project.conn, [
        Annotation(f.id, cls.id, "box", [5 + 30 * k, 5, 30 + 30 * k, 30])
        for f in frames for k, cls in enumerate((car, person))])
    build_dataset(project, DatasetSpec(name="crops", task="crops", group_by="none"))
    window.actions["export"].trigger()
    dialog = window.tools.export_dialog
    assert "imagefolder" not in _formats(dialog)            # the project: annotations
    _choose(dialog.what_combo, Qt.Key.Key_Down)
    assert dialog.what_combo.currentData() == "crops:v1"
    assert _formats(dialog) == ["imagefolder"]
    QTest.keyClicks(dialog.path_edit, str(tmp_path / "folders"))
    _press(dialog.run_button)
    qtbot.waitUntil(lambda: not dialog.running and dialog.summary.toPlainText().startswith("{"),
                    timeout=15000)
    summary = json.loads(dialog.summary.toPlainText())
    assert summary["format"] == "imagefolder" and summary["images"] == 2 * len(frames)
    with open(tmp_path / "folders" / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["class"] for r in rows}) == ["car", "person"]
    assert all((tmp_path / "folders" / r["file"]).is_file() for r in rows)
    _choose(dialog.what_combo, Qt.Key.Key_Up)
    assert dialog.what_combo.currentData() is None
    assert _formats(dialog) == ["yolo", "coco", "voc", "labelme"]
    _press(dialog.close_button)
