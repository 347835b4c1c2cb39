"""A comparison of re-evaluated versions, side by side: one column per version, a row per
metric, the time per image, then one row per class; the best value of each row in bold."""
from __future__ import annotations

from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QWidget)

from src.training.models.compare import Comparison

_PER_CLASS_KEYS = ("mAP50-95", "f1", "recall")
_LOWER_IS_BETTER = ("ms per image",)


class ComparisonTable(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select two or more versions of one task and click Compare: each is "
                            "re-evaluated now on the same dataset split.",
                            objectName="comparisonTitle", wordWrap=True)
        self.table = QTableWidget(0, 0, objectName="comparisonTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        self.result: Comparison | None = None

    def clear_result(self) -> None:
        self.result = None
        self.table.setRowCount(0)
        self.table.setColumnCount(0)

    def show_result(self, result: Comparison) -> None:
        self.result = result
        evs = result.evaluations
        self.title.setText(f"Re-evaluated on <b>{result.dataset}</b>, split <b>{result.split}"
                           f"</b> ({evs[0].images} images)")
        rows = self._rows(result)
        self.table.setColumnCount(len(evs))
        self.table.setHorizontalHeaderLabels([f"{e.version.display_name}\n(id {e.version.id})"
                                              for e in evs])
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([name for name, _ in rows])
        for r, (name, values) in enumerate(rows):
            best = _best(name, values)
            for c, value in enumerate(values):
                item = QTableWidgetItem("—" if value is None else f"{value:.4f}")
                if best is not None and value == best and len(set(values)) > 1:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)

    def cell_text(self, row_name: str, column: int) -> str:
        for r in range(self.table.rowCount()):
            if self.table.verticalHeaderItem(r).text() == row_name:
                return self.table.item(r, column).text()
        raise KeyError(row_name)

    @staticmethod
    def _rows(result: Comparison) -> list[tuple[str, list]]:
        evs = result.evaluations
        keys = sorted({k for e in evs for k in e.metrics})
        rows = [(k, [e.metrics.get(k) for e in evs]) for k in keys]
        rows.append(("ms per image", [e.ms_per_image for e in evs]))
        per_key = next((k for k in _PER_CLASS_KEYS
                        if any(k in row for e in evs for row in e.per_class.values())), None)
        if per_key:
            for name in dict.fromkeys(n for e in evs for n in e.per_class):
                rows.append((f"{name} ({per_key})",
                             [e.per_class.get(name, {}).get(per_key) for e in evs]))
        return rows


def _best(name: str, values: list):
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None
    lower = name in _LOWER_IS_BETTER or "loss" in name
    return min(numbers) if lower else max(numbers)
