"""Class panel, driven by clicks: object classes and frame tags in two sections, hotkeys,
rename/recolour on the canvas (undoable), delete refusal/reassign."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import (QApplication, QColorDialog, QComboBox, QLineEdit, QMessageBox,
                             QPushButton)

from gui_helpers import (_ACCEPT, _REJECT, add_class_by_clicks, answer_modals, click_button,
                         dialog_button, drag, fill_text, view_point)
from src.db import annotations as ann_repo
from src.db import classes as class_repo

pytestmark = pytest.mark.gui


def _draw(window, box=(10, 10, 40, 40)):
    view = window.annotator.view
    drag(view, view_point(view, *box[:2]), view_point(view, *box[2:]))
    return ann_repo.list_annotations(window.session.conn)[-1]


def _error_boxes():
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]


def _button(window, name: str) -> QPushButton:
    return window.class_panel.findChild(QPushButton, name)


def _select_row(window, row: int, section: str = "objects") -> None:
    widget = getattr(window.class_panel, section).list
    rect = widget.visualItemRect(widget.item(row))
    QTest.mouseClick(widget.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _type_answer(text: str):
    def answer(dialog):
        fill_text(dialog.findChild(QLineEdit), text)
        click_button(dialog_button(dialog, *_ACCEPT))
        return f"typed {text}"
    return answer


def _cancel(dialog):
    click_button(dialog_button(dialog, *_REJECT))
    return "cancelled"


def _close_error_box() -> str:
    [box] = _error_boxes()
    text = box.text()
    click_button(box.button(QMessageBox.StandardButton.Ok))
    return text


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


def test_rename_and_recolour_by_clicks_show_on_the_canvas_and_undo(qtbot, window, gui_project):
    project, _ = gui_project
    car = class_repo.get_class_by_name(project.conn, "car")
    ann = _draw(window)
    _select_row(window, 0)
    answer_modals(qtbot, lambda: click_button(_button(window, "renameClassButton")),
                  _type_answer("vehicle"))
    assert class_repo.get_class(project.conn, car.id).name == "vehicle"
    assert window.annotator.view.items_by_id[ann.id].label.text == "vehicle"
    assert "vehicle" in window.class_panel.list.item(0).text()

    def pick_colour(dialog):
        assert isinstance(dialog, QColorDialog)
        hex_edit = next(e for e in dialog.findChildren(QLineEdit) if e.text().startswith("#"))
        fill_text(hex_edit, "#123456")
        QTest.keyClick(hex_edit, Qt.Key.Key_Tab)
        click_button(dialog_button(dialog, *_ACCEPT))
        return "colour"
    answer_modals(qtbot, lambda: click_button(_button(window, "recolorClassButton")), pick_colour)
    assert window.annotator.view.items_by_id[ann.id].color.name() == "#123456"
    window.actions["undo"].trigger()                     # colour back
    window.actions["undo"].trigger()                     # name back
    assert class_repo.get_class(project.conn, car.id).name == "car"
    assert class_repo.get_class(project.conn, car.id).color == car.color
    assert window.annotator.view.items_by_id[ann.id].label.text == "car"


def test_rename_to_an_existing_name_is_refused_with_a_message(qtbot, window, gui_project):
    project, _ = gui_project
    car = class_repo.get_class_by_name(project.conn, "car")
    _select_row(window, 0)
    answer_modals(qtbot, lambda: click_button(_button(window, "renameClassButton")),
                  _type_answer("PERSON"), lambda box: _close_error_box())
    assert class_repo.get_class(project.conn, car.id).name == "car"


def test_deleting_a_used_class_is_refused_unless_reassigned(qtbot, window, gui_project):
    project, _ = gui_project
    car, person = class_repo.list_classes(project.conn)
    ann = _draw(window)
    _select_row(window, 0)
    delete = _button(window, "deleteClassButton")
    refused = answer_modals(qtbot, lambda: click_button(delete), _cancel,
                            lambda box: _close_error_box())
    assert class_repo.get_class(project.conn, car.id) is not None
    assert "used by 1 annotation" in refused[-1]

    def reassign_to_person(dialog):
        combo = dialog.findChild(QComboBox)
        assert [combo.itemText(i) for i in range(combo.count())] == ["person"]  # same kind only
        click_button(dialog_button(dialog, *_ACCEPT))
        return "reassigned"
    _select_row(window, 0)
    answer_modals(qtbot, lambda: click_button(delete), reassign_to_person)
    assert class_repo.get_class(project.conn, car.id) is None
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == person.id
    assert window.annotator.view.items_by_id[ann.id].label.text == "person"
    assert window.class_panel.list.count() == 1

    window.actions["undo"].trigger()          # the class is back, under its id, with its shape
    restored = class_repo.get_class(project.conn, car.id)
    assert (restored.name, restored.color) == (car.name, car.color)
    assert ann_repo.get_annotation(project.conn, ann.id).class_id == car.id
    assert window.class_panel.list.count() == 2
    window.actions["redo"].trigger()
    assert class_repo.get_class(project.conn, car.id) is None


def test_add_and_delete_an_unused_class_by_clicks(qtbot, window, gui_project):
    project, _ = gui_project
    add_class_by_clicks(qtbot, window, "bike")
    bike = class_repo.get_class_by_name(project.conn, "bike")
    assert bike.kind == "object" and window.session.current_class_id == bike.id
    assert window.class_panel.list.count() == 3
    assert bike.id not in window.annotator.tag_bar.buttons      # an object class is no tag
    window.actions["undo"].trigger()                     # adding is undoable too
    assert class_repo.get_class_by_name(project.conn, "bike") is None
    window.actions["redo"].trigger()
    assert class_repo.get_class(project.conn, bike.id).kind == "object"
    _select_row(window, 2)
    answer_modals(qtbot, lambda: click_button(_button(window, "deleteClassButton")))  # Yes
    assert class_repo.get_class_by_name(project.conn, "bike") is None
    assert window.class_panel.list.count() == 2


def test_frame_tags_are_a_section_of_their_own(qtbot, window, gui_project):
    project, _ = gui_project
    panel = window.class_panel
    assert "No frame tag yet" in panel.tags.hint.text()
    assert window.annotator.tag_bar.empty_hint.isVisible()
    add_class_by_clicks(qtbot, window, "day", "tag")
    add_class_by_clicks(qtbot, window, "night", "tag")
    day, night = class_repo.list_classes(project.conn, "tag")
    assert (day.name, night.name) == ("day", "night")
    assert panel.tags.list.count() == 2 and panel.objects.list.count() == 2
    assert "Alt+1-9" in panel.tags.hint.text()
    assert not window.annotator.tag_bar.empty_hint.isVisible()
    assert set(window.annotator.tag_bar.buttons) == {day.id, night.id}
    assert window.session.current_class_id != night.id   # a tag never becomes the shape class
    window.actions["class_3"].trigger()                  # keys 1-9: object classes only
    assert window.session.class_by_id(window.session.current_class_id).kind == "object"

    window.actions["tag_2"].trigger()                    # Alt+2: the second frame tag
    [tag] = ann_repo.list_annotations(project.conn)
    assert (tag.kind, tag.class_id) == ("tag", night.id)
    click_button(window.annotator.tag_bar.buttons[day.id])
    assert {a.class_id for a in ann_repo.list_annotations(project.conn)} == {day.id, night.id}
    assert "(1)" in panel.tags.list.item(0).text()

    box = _draw(window)                                  # a box cannot be given a tag class
    assert box.kind == "box" and window.session.class_by_id(box.class_id).kind == "object"
    with pytest.raises(Exception, match="frame tag"):
        window.session.set_class([box.id], night.id)


def _right_click_row(section, row: int) -> None:
    """What a right click on the list's row delivers to it: a context-menu event."""
    from PyQt6.QtGui import QContextMenuEvent
    widget = section.list
    pos = widget.visualItemRect(widget.item(row)).center()
    QApplication.sendEvent(widget.viewport(), QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, pos, widget.viewport().mapToGlobal(pos)))


def _click_menu_action(menu, name: str) -> None:
    action = next(a for a in menu.actions() if a.objectName() == name)
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def test_a_class_turns_into_a_frame_tag_and_back_from_its_menu(qtbot, window, gui_project):
    project, _ = gui_project
    panel = window.class_panel
    car, person = class_repo.list_classes(project.conn)
    _right_click_row(panel.objects, 1)
    qtbot.waitUntil(lambda: panel.objects.menu is not None and panel.objects.menu.isVisible())
    _click_menu_action(panel.objects.menu, "convertKindAction")
    assert class_repo.get_class(project.conn, person.id).kind == "tag"
    assert panel.objects.list.count() == 1 and panel.tags.list.count() == 1
    assert set(window.annotator.tag_bar.buttons) == {person.id}
    window.actions["undo"].trigger()
    assert class_repo.get_class(project.conn, person.id).kind == "object"
    assert window.annotator.tag_bar.buttons == {}

    _draw(window)                                   # a used object class stays one
    _right_click_row(panel.objects, 0)
    qtbot.waitUntil(lambda: panel.objects.menu.isVisible())
    log = answer_modals(qtbot, lambda: _click_menu_action(panel.objects.menu, "convertKindAction"),
                        lambda box: _close_error_box())
    assert "labels 1 annotation" in log[0]
    assert class_repo.get_class(project.conn, car.id).kind == "object"
