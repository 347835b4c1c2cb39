"""The dataset dialog's report: instances per class × split (augmented copies beside them),
what was skipped, and "Train on this dataset…"."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QGroupBox, QHeaderView, QLabel, QPushButton, QTableWidget,
                             QTableWidgetItem, QVBoxLayout)

from src.data.datasets.spec import SPLITS


class ReportBox(QGroupBox):
    def __init__(self, parent=None) -> None:
        super().__init__("Report", parent)
        self.setObjectName("reportGroup")
        self.label = QLabel(wordWrap=True, objectName="reportLabel")
        self.table = QTableWidget(0, len(SPLITS) + 1, objectName="reportTable")
        self.table.setHorizontalHeaderLabels([*SPLITS, "total"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(150)
        self.train_button = QPushButton("Train on this dataset…",
                                        objectName="trainOnDatasetButton", autoDefault=False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.table)
        layout.addWidget(self.train_button)
        self.hide()

    def show_report(self, ref: str, record, report: dict) -> None:
        augmented = report["augmented"]
        rows = [(name, report["instances"][name], augmented["instances"].get(name, {}))
                for name in report["classes"]]
        what = "crops" if report["task"] == "crops" else "images"
        rows.append((f"({what})", report["images"], augmented["images"]))
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([name for name, _, _ in rows])
        for r, (_name, counts, extra) in enumerate(rows):
            values = [counts.get(s, 0) for s in SPLITS]
            added = [extra.get(s, 0) for s in SPLITS]
            for c, (value, plus) in enumerate(zip([*values, sum(values)], [*added, sum(added)])):
                item = QTableWidgetItem(f"{value} +{plus} augmented" if plus else str(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        skipped = "; ".join(f"{k}: {v}" for k, v in report.get("skipped", {}).items())
        copies = augmented["images"]["train"]
        self.label.setText(
            f"Built {ref} ({record.task}) in {record.path}."
            + (f" {copies} augmented copies in train." if copies else "")
            + (f" Skipped: {skipped}." if skipped else ""))
        self.show()
