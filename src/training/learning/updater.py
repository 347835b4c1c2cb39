"""Adapter updates in the background: a daemon thread, a wall-time budget, cancellation.

An update is a job `job(ctx: UpdateContext) -> state` that trains for some epochs and returns
the new adapter state (any object: a state dict, a folder). The job checks
`ctx.should_stop()` between steps (cooperative, like Ultralytics' `trainer.stop`) and reports
progress with `ctx.report(UpdateProgress(...))`; `run_epochs` is the epoch loop both learning
loops use (train step, validate, early stopping, best-state snapshot, budget).

`BackgroundUpdate` runs one job at a time per session. A request while one runs is queued,
and several such requests coalesce into one next run (it will see every sample added by then).
The new state is exposed only when a run finishes (`last_result`, `on_finished`): until then
the caller keeps using its previous adapter. Callbacks are plain callables called from the
worker thread; a GUI turns them into Qt signals, the CLI prints.

    update = BackgroundUpdate(job, budget_s=20, on_progress=print, on_finished=use_result)
    update.request()        # 'started' or 'queued'
    update.wait(60)         # until idle; update.last_result.state is the new adapter
    update.close()          # cancel and join, e.g. when the session closes
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from src.platform_support import lower_thread_priority
from src.training.learning.early_stop import CONTINUE, EarlyStopper, StopRules

log = logging.getLogger(__name__)

FINISHED, CANCELLED, FAILED = "finished", "cancelled", "failed"
BUDGET, CANCEL = "budget", "cancelled"   # run_epochs reasons besides early_stop's decisions


@dataclass(frozen=True)
class UpdateProgress:
    """One epoch of an update, as the status line shows it."""

    epoch: int
    max_epochs: int
    val_metric: float | None
    best: float | None
    elapsed_s: float
    train_loss: float | None = None
    message: str = ""


@dataclass(frozen=True)
class UpdateResult:
    """How a run ended. `state` is the job's return value, None unless status is 'finished'."""

    status: str
    state: Any
    elapsed_s: float
    finished_at: float                     # time.time()
    error: BaseException | None = None
    run: int = 0                           # 1 for the session's first run, then 2, ...


class UpdateContext:
    """What a running job sees: its budget, the cancel flag and the progress callback."""

    def __init__(self, budget_s: float | None, cancel: threading.Event,
                 on_progress: Callable[[UpdateProgress], None] | None) -> None:
        self.budget_s = budget_s
        self._cancel = cancel
        self._on_progress = on_progress
        self._started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    @property
    def time_left_s(self) -> float:
        return math.inf if self.budget_s is None else self.budget_s - self.elapsed_s

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        """Cancelled, or the wall-time budget is spent."""
        return self.cancelled or self.time_left_s <= 0

    def report(self, progress: UpdateProgress) -> None:
        if self._on_progress is not None:
            try:
                self._on_progress(progress)
            except Exception:  # a broken listener must not kill the update
                log.exception("progress callback failed")


@dataclass
class EpochsOutcome:
    """What `run_epochs` did: the best state (None when no epoch finished) and why it stopped."""

    best_state: Any
    best_metric: float | None
    best_epoch: int
    epochs: int
    reason: str                             # an early_stop decision, 'budget' or 'cancelled'
    history: list[float] = field(default_factory=list)


def run_epochs(ctx: UpdateContext, rules: StopRules, *, train_epoch: Callable[[int], float | None],
               validate: Callable[[int], float], snapshot: Callable[[], Any]) -> EpochsOutcome:
    """Train/validate epoch after epoch until early stopping, the budget or a cancel.

    `train_epoch(epoch)` returns the train loss (or None), `validate(epoch)` the metric
    (higher is better), `snapshot()` a copy of the current adapter state, taken whenever
    the metric improves. An epoch is not started when the previous one says it would not fit
    in the time left."""
    stopper, out = EarlyStopper(rules), EpochsOutcome(None, None, -1, 0, CONTINUE)
    last_epoch_s = 0.0
    for epoch in range(rules.max_epochs):
        if ctx.cancelled or (epoch and ctx.time_left_s < last_epoch_s):
            out.reason = CANCEL if ctx.cancelled else BUDGET
            break
        start = time.monotonic()
        loss = train_epoch(epoch)
        metric = float(validate(epoch))
        last_epoch_s = time.monotonic() - start
        out.history.append(metric)
        out.epochs = epoch + 1
        out.reason = stopper.update(epoch, metric, ctx.elapsed_s)
        if stopper.improved_last:
            out.best_state, out.best_metric, out.best_epoch = snapshot(), stopper.best, epoch
        ctx.report(UpdateProgress(epoch, rules.max_epochs, metric, stopper.best, ctx.elapsed_s,
                                  loss, out.reason))
        if out.reason != CONTINUE:
            break
    return out


class BackgroundUpdate:
    """One update at a time in a daemon thread; requests during a run coalesce into one more."""

    def __init__(self, job: Callable[[UpdateContext], Any], *, budget_s: float | None,
                 on_progress: Callable[[UpdateProgress], None] | None = None,
                 on_finished: Callable[[UpdateResult], None] | None = None,
                 name: str = "learning-update") -> None:
        self._job, self.budget_s, self._name = job, budget_s, name
        self._on_progress, self._on_finished = on_progress, on_finished
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending = False
        self._runs = 0
        self.last_result: UpdateResult | None = None

    @property
    def running(self) -> bool:
        return not self._idle.is_set()

    @property
    def pending(self) -> bool:
        return self._pending

    def request(self) -> str:
        """Start a run now ('started'), or queue one after the current run ('queued')."""
        with self._lock:
            if self.running:
                self._pending = True
                return "queued"
            self._start_locked()
            return "started"

    def cancel(self) -> None:
        """Stop the current run cooperatively and drop any queued one; the old state stays."""
        with self._lock:
            self._pending = False
            if self.running:
                self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is going or queued; False when `timeout` ran out first."""
        return self._idle.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Cancel and wait for the thread (a session closing, the app quitting)."""
        self.cancel()
        return self.wait(timeout)

    def _start_locked(self) -> None:
        self._idle.clear()
        self._cancel = threading.Event()
        self._runs += 1
        ctx = UpdateContext(self.budget_s, self._cancel, self._on_progress)
        self._thread = threading.Thread(target=self._run, args=(ctx, self._runs),
                                        name=self._name, daemon=True)
        self._thread.start()

    def _run(self, ctx: UpdateContext, run: int) -> None:
        lower_thread_priority()     # the user's clicks and the window come first
        try:
            state = self._job(ctx)
            status, error = (CANCELLED, None) if ctx.cancelled else (FINISHED, None)
        except Exception as exc:  # reported through the result, never raised in the thread
            log.exception("learning update failed")
            state, status, error = None, FAILED, exc
        result = UpdateResult(status, state if status == FINISHED else None, ctx.elapsed_s,
                              time.time(), error, run)
        self.last_result = result
        self._notify(result)
        with self._lock:
            if self._pending:
                self._pending = False
                self._start_locked()
            else:
                self._idle.set()

    def _notify(self, result: UpdateResult) -> None:
        if self._on_finished is None:
            return
        try:
            self._on_finished(result)
        except Exception:
            log.exception("on_finished callback failed")
