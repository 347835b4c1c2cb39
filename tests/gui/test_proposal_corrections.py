"""A user's review of model proposals in the annotator — accept, move, reject — is stored and
recorded as corrections of that model (for learning from corrections), through keys and drags."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from gui_helpers import drag, open_main_window, view_point
from src.cli import main as cli_main
from src.db import annotations as ann_repo
from src.db import classes as class_repo
from src.db import frames as frame_repo
from src.db import proposals as proposal_repo
from src.db.records import Annotation

pytestmark = pytest.mark.gui


@pytest.fixture
def proposed_window(qtbot, gui_project):
    """Frame 0 captured with two proposals of model:7; the window opened on it."""
    project, source = gui_project
    assert cli_main(["--project", str(project.root), "frames", "capture", str(source.id),
                     "--at", "0"]) == 0
    frame = frame_repo.get_frame_at(project.conn, source.id, 0)
    car = class_repo.get_class_by_name(project.conn, "car")
    for geometry in ([5.0, 5.0, 25.0, 25.0], [50.0, 20.0, 80.0, 50.0]):
        ann_repo.add_annotation(project.conn, Annotation(
            frame_id=frame.id, class_id=car.id, kind="box", geometry=geometry,
            source="model:7", confidence=0.8, status="proposed"))
    win = open_main_window(qtbot, project.root, (900, 700))
    yield win, project
    win.close()


def test_moving_then_accepting_and_rejecting_proposals_records_corrections(qtbot,
                                                                          proposed_window):
    win, project = proposed_window
    view = win.annotator.view
    win.actions["mode_edit"].trigger()
    view.setFocus()
    drag(view, view_point(view, 15, 15), view_point(view, 20, 18))       # move the first
    moved = [a for a in ann_repo.list_annotations(project.conn) if a.geometry[0] != 5.0
             and a.geometry[0] != 50.0]
    assert moved, "the drag did not move the proposal"
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # accept all
    anns = ann_repo.list_annotations(project.conn)
    assert {a.status for a in anns} == {"accepted"} and len(anns) == 2
    kinds = sorted(c.kind for c in proposal_repo.list_corrections(project.conn, "model:7"))
    assert kinds == ["accepted", "accepted", "moved_resized"]

    win.actions["undo"].trigger()                     # back to two proposals
    qtbot.keyClick(view, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)  # reject all
    assert [a for a in ann_repo.list_annotations(project.conn)] == []
    kinds = [c.kind for c in proposal_repo.list_corrections(project.conn, "model:7")]
    assert kinds.count("deleted") == 2
