"""BackgroundUpdate: daemon thread, budget, cancel, coalesced requests; run_epochs."""
from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from src.training.learning.early_stop import GIVE_UP, STOP_GOOD, StopRules
from src.training.learning.updater import (BUDGET, CANCEL, CANCELLED, FAILED, FINISHED,
                                           BackgroundUpdate, UpdateContext, run_epochs)


class GatedJob:
    """A job that waits for a gate, so a test controls when it ends."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def __call__(self, ctx: UpdateContext):
        self.calls += 1
        self.started.set()
        while not self.gate.wait(0.01):
            if ctx.should_stop():
                return "stopped early"
        return f"state-{self.calls}"


def test_result_appears_only_when_finished_and_runs_in_a_thread():
    job, finished = GatedJob(), []
    update = BackgroundUpdate(job, budget_s=30, on_finished=finished.append)
    assert update.request() == "started"
    assert job.started.wait(5)
    assert update.running and update.last_result is None and not finished
    job.gate.set()
    assert update.wait(10)
    assert update.last_result.status == FINISHED and update.last_result.state == "state-1"
    assert finished == [update.last_result]


def test_requests_while_running_coalesce_into_one_more_run():
    job = GatedJob()
    update = BackgroundUpdate(job, budget_s=30)
    update.request()
    assert job.started.wait(5)
    assert [update.request(), update.request(), update.request()] == ["queued"] * 3
    job.gate.set()
    assert update.wait(10)
    assert job.calls == 2 and update.last_result.state == "state-2"


def test_cancel_keeps_no_state_and_drops_the_queue():
    job = GatedJob()
    update = BackgroundUpdate(job, budget_s=30)
    update.request()
    assert job.started.wait(5)
    update.request()
    update.cancel()
    assert update.wait(10)
    assert update.last_result.status == CANCELLED and update.last_result.state is None
    assert job.calls == 1


def test_budget_stops_the_job():
    job = GatedJob()
    update = BackgroundUpdate(job, budget_s=0.2)
    update.request()
    assert update.wait(10)
    assert update.last_result.status == FINISHED and update.last_result.state == "stopped early"


def test_failure_is_reported_not_raised():
    def broken(ctx):
        raise RuntimeError("no memory")

    update = BackgroundUpdate(broken, budget_s=5)
    update.request()
    assert update.wait(10)
    assert update.last_result.status == FAILED and "no memory" in str(update.last_result.error)
    update.request()                                  # still usable afterwards
    assert update.wait(10) and update.last_result.run == 2


def _ctx(budget_s=None):
    return UpdateContext(budget_s, threading.Event(), None)


def test_run_epochs_keeps_the_best_snapshot_and_stops_good():
    curve = [0.2, 0.7, 0.5, 0.6]
    state = {"epoch": -1}
    progress = []
    ctx = UpdateContext(None, threading.Event(), progress.append)

    def train(epoch):
        state["epoch"] = epoch
        return 1.0 / (epoch + 1)

    out = run_epochs(ctx, StopRules(patience=2, good_enough=0.5, max_epochs=10),
                     train_epoch=train, validate=lambda e: curve[e],
                     snapshot=lambda: dict(state))
    assert out.reason == STOP_GOOD and out.epochs == 4
    assert out.best_state == {"epoch": 1} and out.best_metric == 0.7
    assert [p.val_metric for p in progress] == curve and progress[0].train_loss == 1.0


def test_run_epochs_gives_up_and_honours_budget_and_cancel():
    rules = StopRules.lit_lora()
    out = run_epochs(_ctx(), rules, train_epoch=lambda e: None, validate=lambda e: 0.0,
                     snapshot=lambda: "s")
    assert out.reason == GIVE_UP and out.epochs == 10

    def slow(epoch):
        time.sleep(0.05)

    out = run_epochs(_ctx(budget_s=0.12), rules, train_epoch=slow, validate=lambda e: 0.5,
                     snapshot=lambda: "s")
    assert out.reason == BUDGET and 1 <= out.epochs < 100

    cancelled = threading.Event()
    cancelled.set()
    out = run_epochs(UpdateContext(None, cancelled, None), rules, train_epoch=lambda e: None,
                     validate=lambda e: 0.5, snapshot=lambda: "s")
    assert out.reason == CANCEL and out.epochs == 0 and out.best_state is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_update_thread_runs_below_the_callers_priority():
    def nice(_ctx=None) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    update = BackgroundUpdate(nice, budget_s=30)
    update.request()
    assert update.wait(10)
    assert update.last_result.state == max(nice(), 10)
