"""Class panel: hotkeys, rename/recolour on the canvas (undoable), delete refusal/reassign."""
from __future__ import annotations

import pytest
from PyQt6.QtWidgets import QApplication, QMessageBox

from gui_helpers import drag, view_point
from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.gui import dialogs

pytestmark = pytest.mark.gui


def _draw(window, box=(10, 10, 40, 40)):
    view = window.annotator.view
    drag(view, view_point(view, *box[:2]), view_point(view, *box[2:]))
    return ann_repo.list_annotations(window.session.conn)[-1]


def _error_boxes():
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]


def test_number_keys_pick_the_class_of_new_shapes(window, gui_project):
    project, _ = gui_project
    car, person = class_repo.list_classes(project.conn)
    window.actions["class_2"].trigger()
    assert window.session.current_class_id == person.id
    assert window.class_panel.current_class_id() == person.id
    first = _draw(window)
    assert first.class_id == person.id
    window.annotator.view.select([])
    window.actions["class_1"].trigger()
    second = _draw(window, (50, 10, 80, 40))
    assert second.class_id == car.id
    window.actions["class_9"].trigger()              # no 9th class: nothing changes
    assert window.session.current_class_id == car.id


def test_class_key_with_a_selection_changes_its_class_undoably(window, gui_project):
    project, _ = gui_project
    car, person = class_repo.list_classes(project.conn)
    ann = _draw(window)
    assert window.annotator.view.selected_ids() == [ann.id]
    window.actions["class_2"].trigger()
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == person.id
    assert window.annotator.view.items_by_id[ann.id].label.text == "person"
    window.actions["undo"].trigger()
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == car.id


def test_rename_and_recolour_show_on_the_canvas_and_undo(window, gui_project, monkeypatch):
    project, _ = gui_project
    car = class_repo.get_class_by_name(project.conn, "car")
    ann = _draw(window)
    monkeypatch.setattr(dialogs, "ask_text", lambda *a, **k: "vehicle")
    window.class_panel.pick(car.id)
    window.class_panel.rename_current()
    assert class_repo.get_class(project.conn, car.id).name == "vehicle"
    item = window.annotator.view.items_by_id[ann.id]
    assert item.label.text == "vehicle"
    assert "vehicle" in window.class_panel.list.item(0).text()
    assert window.annotator.tag_bar.buttons[car.id].text().startswith("vehicle")

    window.session.edit_class(car.id, color="#123456")
    assert window.annotator.view.items_by_id[ann.id].color.name() == "#123456"
    window.actions["undo"].trigger()                     # colour back
    window.actions["undo"].trigger()                     # name back
    assert class_repo.get_class(project.conn, car.id).name == "car"
    assert class_repo.get_class(project.conn, car.id).color == car.color
    assert window.annotator.view.items_by_id[ann.id].label.text == "car"


def test_rename_to_an_existing_name_is_refused_with_a_message(window, gui_project, monkeypatch):
    project, _ = gui_project
    monkeypatch.setattr(dialogs, "ask_text", lambda *a, **k: "PERSON")
    car = class_repo.get_class_by_name(project.conn, "car")
    window.class_panel.pick(car.id)
    window.class_panel.rename_current()
    assert class_repo.get_class(project.conn, car.id).name == "car"
    [box] = _error_boxes()
    assert "already exists" in box.text()
    box.close()


def test_deleting_a_used_class_is_refused_unless_reassigned(window, gui_project, monkeypatch):
    project, _ = gui_project
    car, person = class_repo.list_classes(project.conn)
    ann = _draw(window)
    window.class_panel.pick(car.id)

    monkeypatch.setattr(dialogs, "ask_reassign", lambda *a, **k: None)     # user cancels
    window.class_panel.delete_current()
    assert class_repo.get_class(project.conn, car.id) is not None
    [box] = _error_boxes()
    assert "used by 1 annotation" in box.text()
    box.close()

    monkeypatch.setattr(dialogs, "ask_reassign", lambda parent, cls, used, others: others[0].id)
    window.class_panel.delete_current()
    assert class_repo.get_class(project.conn, car.id) is None
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == person.id
    assert window.annotator.view.items_by_id[ann.id].label.text == "person"
    assert window.class_panel.list.count() == 1

    window.actions["undo"].trigger()          # the class is back, under its id, with its shape
    restored = class_repo.get_class(project.conn, car.id)
    assert (restored.name, restored.color) == (car.name, car.color)
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == car.id
    assert window.annotator.view.items_by_id[ann.id].label.text == "car"
    assert window.class_panel.list.count() == 2
    window.actions["redo"].trigger()
    assert class_repo.get_class(project.conn, car.id) is None
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == person.id


def test_add_and_delete_an_unused_class(window, gui_project, monkeypatch):
    project, _ = gui_project
    monkeypatch.setattr(dialogs, "ask_text", lambda *a, **k: "bike")
    window.class_panel.add_class()
    bike = class_repo.get_class_by_name(project.conn, "bike")
    assert bike is not None and window.session.current_class_id == bike.id
    assert window.class_panel.list.count() == 3
    assert bike.id in window.annotator.tag_bar.buttons
    window.actions["undo"].trigger()                     # adding is undoable too
    assert class_repo.get_class_by_name(project.conn, "bike") is None
    assert window.class_panel.list.count() == 2
    window.actions["redo"].trigger()
    assert class_repo.get_class(project.conn, bike.id).name == "bike"
    window.class_panel.pick(bike.id)
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)
    window.class_panel.delete_current()
    assert class_repo.get_class_by_name(project.conn, "bike") is None
    assert window.class_panel.list.count() == 2
