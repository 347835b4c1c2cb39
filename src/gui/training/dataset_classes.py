"""The dataset dialog's class table: which classes go in, under which name (rename, or merge
several into one name), and how many augmented copies of each in train (oversampling)."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHeaderView, QSpinBox, QTableWidget, QTableWidgetItem

from src.db.records import LabelClass

COLUMNS = ("Use", "Class", "Name in dataset", "Oversample ×")


class ClassTable(QTableWidget):
    changed = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("classTable")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Untick a class to leave it out; give several classes the same name"
                        " in the dataset to merge them; an oversample factor N > 1 adds N-1"
                        " augmented copies of each training image with that class")
        self._state: dict[str, tuple[bool, str, int]] = {}     # kept across task changes
        self.itemChanged.connect(lambda _item: self.changed.emit())

    def set_classes(self, classes: list[LabelClass]) -> None:
        self._remember()
        self.blockSignals(True)
        self.setRowCount(len(classes))
        for row, cls in enumerate(classes):
            use, target, factor = self._state.get(cls.name, (True, cls.name, 1))
            check = QTableWidgetItem()
            check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            check.setCheckState(Qt.CheckState.Checked if use else Qt.CheckState.Unchecked)
            self.setItem(row, 0, check)
            name = QTableWidgetItem(cls.name)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.setItem(row, 1, name)
            self.setItem(row, 2, QTableWidgetItem(target))
            spin = QSpinBox(minimum=1, maximum=100, value=factor)
            spin.setObjectName(f"factorSpin_{cls.name}")
            spin.valueChanged.connect(lambda _v: self.changed.emit())
            self.setCellWidget(row, 3, spin)
        self.blockSignals(False)
        self.changed.emit()

    def show_choices(self, use, target, factor) -> None:
        """Set every row from functions of the class name (an earlier build's settings)."""
        self.blockSignals(True)
        for row in range(self.rowCount()):
            name = self.item(row, 1).text()
            self.item(row, 0).setCheckState(
                Qt.CheckState.Checked if use(name) else Qt.CheckState.Unchecked)
            self.item(row, 2).setText(target(name))
            self.cellWidget(row, 3).setValue(factor(name))
        self.blockSignals(False)
        self.changed.emit()

    def _remember(self) -> None:
        for row in range(self.rowCount()):
            self._state[self.item(row, 1).text()] = self._row(row)

    def _row(self, row: int) -> tuple[bool, str, int]:
        use = self.item(row, 0).checkState() == Qt.CheckState.Checked
        target = self.item(row, 2).text().strip() or self.item(row, 1).text()
        return use, target, self.cellWidget(row, 3).value()

    def rows(self) -> list[tuple[str, bool, str, int]]:
        """(class, used, name in the dataset, oversample factor) per row."""
        return [(self.item(r, 1).text(), *self._row(r)) for r in range(self.rowCount())]

    def drop(self) -> list[str]:
        return [name for name, use, _t, _f in self.rows() if not use]

    def mapping(self) -> dict[str, str]:
        return {name: target for name, use, target, _f in self.rows()
                if use and target != name}

    def factors(self) -> dict[str, int]:
        """Dataset class -> oversample factor (> 1 only; merged classes take the largest)."""
        out: dict[str, int] = {}
        for _name, use, target, factor in self.rows():
            if use and factor > 1:
                out[target] = max(out.get(target, 1), factor)
        return out
