"""Live training charts (pyqtgraph, made for plots that update many times a second):
losses per epoch with the batch loss between, validation metrics, learning rate."""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtWidgets import QHBoxLayout, QWidget

from src.gui.training.progress import TrainingProgress

pg.setConfigOptions(antialias=True, background="w", foreground="k")
_PENS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


class TrainingCharts(QWidget):
    """Three plots redrawn from a TrainingProgress."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.loss_plot = self._plot("loss")
        self.metric_plot = self._plot("validation metrics")
        self.lr_plot = self._plot("learning rate", legend=False)   # one curve: the title says it
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._shown: dict[tuple[str, str], tuple] = {}    # (count, last point) drawn per curve
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for plot in (self.loss_plot, self.metric_plot, self.lr_plot):
            layout.addWidget(plot)

    def _plot(self, title: str, legend: bool = True) -> pg.PlotWidget:
        plot = pg.PlotWidget(title=title)
        plot.setLabel("bottom", "epoch")
        for axis in ("bottom", "left"):       # never "epoch (x0.001)": fractions of an epoch
            plot.getAxis(axis).enableAutoSIPrefix(False)   # are plain numbers
        if legend:
            plot.addLegend(offset=(-5, 5), labelTextSize="7pt")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMinimumSize(220, 180)
        return plot

    def refresh(self, progress: TrainingProgress) -> None:
        self._set("loss", "batch loss", progress.batch_loss, pen=pg.mkPen("#bbbbbb", width=1))
        for i, (name, points) in enumerate(sorted(progress.epoch_losses.items())):
            self._set("loss", name, points, _PENS[i % len(_PENS)], symbol=True)
        for i, (name, points) in enumerate(sorted(progress.metrics.items())):
            self._set("metric", name, points, _PENS[i % len(_PENS)], symbol=True)
        self._set("lr", "lr", progress.lr, _PENS[0], symbol=True)

    def points(self, chart: str, name: str) -> list[tuple[float, float]]:
        """What a curve shows (tests read the charts through this)."""
        curve = self._curves.get((chart, name))
        if curve is None:
            return []
        xs, ys = curve.getData()
        return [] if xs is None else list(zip(map(float, xs), map(float, ys)))

    def _set(self, chart: str, name: str, points, colour: str | None = None, *,
             pen=None, symbol: bool = False) -> None:
        key = (chart, name)
        if key not in self._curves:
            plot = {"loss": self.loss_plot, "metric": self.metric_plot, "lr": self.lr_plot}[chart]
            style = {"symbol": "o", "symbolSize": 5, "symbolBrush": colour} if symbol else {}
            self._curves[key] = plot.plot([], [], name=name, pen=pen or pg.mkPen(colour, width=2),
                                          **style)
        shown = (len(points), tuple(points[-1]) if points else None)
        if self._shown.get(key) == shown:
            return                      # unchanged: no re-range, no repaint of its plot
        self._shown[key] = shown
        xs, ys = ([p[0] for p in points], [p[1] for p in points]) if points else ([], [])
        self._curves[key].setData(xs, ys)
