"""Training progress events, named as Ultralytics names them.

Both trainers (YOLO and timm) emit the same events with the same payload, so the GUI
worker, the CLI progress bar, TensorBoard and the DB logger are each one small callback
that works for every model type. Payloads are plain JSON-serialisable dicts so that a
child process can stream them (`train --events`) one JSON object per line.

Payload keys (present where they apply):
  epoch (0-based), epochs (total), batch (0-based), batches (per epoch),
  losses {name: float}, metrics {name: float}, lr (float), elapsed_s, eta_s,
  message (str, human-readable status such as which base model was used),
  run_dir (str), status ('completed' | 'cancelled' on on_train_end).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

# The event names, in the order they fire (batch events repeat inside an epoch).
EVENTS = (
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_model_save",
    "on_train_end",
    "teardown",
)

Callback = Callable[[str, dict[str, Any]], None]


class EventBus:
    """Callbacks keyed by event name; `emit` calls them in registration order."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)

    def on(self, event: str, callback: Callback) -> None:
        """Register `callback(event, payload)` for `event` ('*' for every event)."""
        if event != "*" and event not in EVENTS:
            raise ValueError(f"unknown training event {event!r}; known: {', '.join(EVENTS)}")
        self._callbacks[event].append(callback)

    def emit(self, event: str, **payload: Any) -> None:
        """Call every callback of `event`, then the '*' callbacks."""
        for callback in (*self._callbacks.get(event, ()), *self._callbacks.get("*", ())):
            callback(event, payload)
