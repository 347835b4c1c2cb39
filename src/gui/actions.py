"""Every menu command and keyboard shortcut, in one table, and the shortcuts dialog."""
from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QMainWindow, QMenu, QStyle,
                             QTableWidget, QTableWidgetItem, QVBoxLayout)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    menu: str | None          # None: shortcut only (listed in the dialog all the same)
    text: str
    keys: tuple[str, ...] = ()


SPECS = (
    ActionSpec("new_project", "&File", "&New project…", ("Ctrl+N",)),
    ActionSpec("open_project", "&File", "&Open project…", ("Ctrl+O",)),
    ActionSpec("import_video", "&File", "Import &video…", ("Ctrl+I",)),
    ActionSpec("import_folder", "&File", "Import image &folder…", ("Ctrl+Shift+I",)),
    ActionSpec("import_annotations", "&File", "Import &annotations…", ()),
    ActionSpec("export", "&File", "&Export…", ("Ctrl+E",)),
    ActionSpec("quit", "&File", "&Quit", ("Ctrl+Q",)),
    ActionSpec("undo", "&Edit", "&Undo", ("Ctrl+Z",)),
    ActionSpec("redo", "&Edit", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y")),
    ActionSpec("delete", "&Edit", "&Delete selected shapes", ("Del", "Backspace")),
    ActionSpec("accept", "&Edit", "&Accept selected proposal", ("A",)),
    ActionSpec("accept_all", "&Edit", "Accept all proposals on this frame", ("Shift+A",)),
    ActionSpec("reject", "&Edit", "Re&ject selected proposal", ("X",)),
    ActionSpec("reject_all", "&Edit", "Reject all proposals on this frame", ("Shift+X",)),
    ActionSpec("mode_edit", "&Tools", "&Select / move", ("V",)),
    ActionSpec("mode_box", "&Tools", "Draw &box", ("B",)),
    ActionSpec("mode_polygon", "&Tools", "Draw &polygon", ("P",)),
    ActionSpec("check", "&Tools", "&Check annotations…", ("Ctrl+K",)),
    ActionSpec("zoom_fit", "&View", "Zoom to &fit", ("F", "Ctrl+0")),
    ActionSpec("zoom_in", "&View", "Zoom &in", ("Ctrl+=", "Ctrl++")),
    ActionSpec("zoom_out", "&View", "Zoom &out", ("Ctrl+-",)),
    ActionSpec("play", "&Video", "Play / pause", ("Space",)),
    ActionSpec("back1", "&Video", "Previous frame", ("Left",)),
    ActionSpec("forward1", "&Video", "Next frame", ("Right",)),
    ActionSpec("back10", "&Video", "Back 10 frames", ("Shift+Left",)),
    ActionSpec("forward10", "&Video", "Forward 10 frames", ("Shift+Right",)),
    ActionSpec("prev_annotated", "&Video", "Previous annotated frame", ("Ctrl+Left",)),
    ActionSpec("next_annotated", "&Video", "Next annotated frame", ("Ctrl+Right",)),
    ActionSpec("capture", "&Video", "&Capture frame", ("C",)),
    # Assisted labeling with the active model (src/gui/assist/).
    ActionSpec("prelabel_frame", "&Assist", "Pre-label this &frame", ("L",)),
    ActionSpec("prelabel_next", "&Assist", "Pre-label the &next N frames…", ("Shift+L",)),
    ActionSpec("prelabel_range", "&Assist", "Pre-label a &range…", ("Ctrl+Shift+L",)),
    ActionSpec("propagate", "&Assist", "&Propagate selected boxes…", ("Shift+P",)),
    *(ActionSpec(f"class_{n}", None, f"Pick class {n} (and give it to the selected shapes)",
                 (str(n),)) for n in range(1, 10)),
    *(ActionSpec(f"tag_{n}", None, f"Toggle frame tag {n}", (f"Alt+{n}",)) for n in range(1, 10)),
    ActionSpec("build_dataset", "T&raining", "&Build dataset…", ()),
    ActionSpec("train", "T&raining", "&Train model…", ("Ctrl+T",)),
    ActionSpec("retrain", "T&raining", "&Retrain active model with new data…", ()),
    ActionSpec("training_queue", "T&raining", "Training &queue…", ()),
    ActionSpec("tensorboard", "T&raining", "Open Tensor&Board", ()),
    ActionSpec("models", "T&raining", "&Models…", ()),
    # ---- learning loop (issue 14): which frame next, learning from corrections ----
    ActionSpec("suggest_frames", "&Learn", "&Suggest frames to label", ()),
    ActionSpec("next_suggested", "&Learn", "&Next suggested frame", ("N",)),
    ActionSpec("learn_toggle", "&Learn", "&Learn from my corrections", ()),
    ActionSpec("learn_propose", "&Learn", "P&ropose on this frame with the session", ()),
    ActionSpec("learn_update", "&Learn", "&Update the adapter now", ()),
    ActionSpec("learn_promote", "&Learn", "&Promote the adapter…", ()),
    ActionSpec("learn_discard", "&Learn", "&Discard the adapter…", ()),
    ActionSpec("shortcuts", "&Help", "&Keyboard shortcuts", ("F1",)),
)

# Shown in the dialog, handled by the canvas itself rather than by an action.
CANVAS_KEYS = (
    ("Drag (box tool)", "Draw a box; a click selects"),
    ("Click points (polygon tool)", "Add polygon points; click the first point or Enter closes"),
    ("Esc", "Cancel the shape being drawn / clear the selection"),
    ("Wheel", "Zoom around the cursor"),
    ("Space + drag, middle drag", "Pan"),
    ("Ctrl + click", "Add to / remove from the selection"),
    ("Right click", "Shape menu: class, accept/reject, delete"),
)


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """Create the actions (on the window, so their shortcuts work anywhere in it) and menus."""
    actions: dict[str, QAction] = {}
    menus: dict[str, QMenu] = {}
    for spec in SPECS:
        action = QAction(spec.text, window)
        action.setObjectName(f"action_{spec.name}")
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        if spec.keys:
            action.setToolTip(f"{spec.text.replace('&', '').rstrip('…')} ({spec.keys[0]})")
        window.addAction(action)
        actions[spec.name] = action
        if spec.menu:
            if spec.menu not in menus:
                menus[spec.menu] = window.menuBar().addMenu(spec.menu)
            menus[spec.menu].addAction(action)
    for name in ("mode_edit", "mode_box", "mode_polygon"):
        actions[name].setCheckable(True)
    style = window.style()
    for name, icon in (("back10", "SP_MediaSkipBackward"), ("back1", "SP_MediaSeekBackward"),
                       ("play", "SP_MediaPlay"), ("forward1", "SP_MediaSeekForward"),
                       ("forward10", "SP_MediaSkipForward")):
        actions[name].setIcon(style.standardIcon(getattr(QStyle.StandardPixmap, icon)))
    file_menu = menus["&File"]
    recent = QMenu("Open &recent", window)
    recent.setObjectName("recentMenu")
    file_menu.insertMenu(actions["import_video"], recent)
    file_menu.insertSeparator(actions["quit"])
    window.recent_menu = recent
    return actions


def shortcut_rows() -> list[tuple[str, str]]:
    rows = [(", ".join(s.keys), s.text.replace("&", "").rstrip("…")) for s in SPECS if s.keys]
    return rows + list(CANVAS_KEYS)


class ShortcutsDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows()
        table = QTableWidget(len(rows), 2, self)
        table.setObjectName("shortcutsTable")
        table.setHorizontalHeaderLabels(["Keys", "Does"])
        table.verticalHeader().hide()
        for r, (keys, text) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(text))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(560, 640)
