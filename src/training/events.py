"""Training progress events, named as Ultralytics names them, with one typed payload each.

Both trainers (YOLO and timm) emit the same events with the same payload dataclass, so the
GUI worker, the CLI progress bar, TensorBoard and the DB logger are each one small callback
that works for every model type. `EventBus.emit(name, **fields)` builds the event's
dataclass: a field the dataclass lacks is a TypeError, a required one missing too, so no
trainer can emit something the other does not. The contract is documented in docs/events.md.

A payload also reads as the mapping it used to be (`p["epoch"]`, `p.get("lr")`,
`"metrics" in p`): a field that does not apply is None and then absent from the mapping and
from `to_dict()` (what `train --events` prints, one JSON object per line). Every field that
can be None has a default, so `bus.emit(name, **payload)` re-emits a payload unchanged.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, Iterator


@dataclass
class TrainingEvent(Mapping):
    """Base of every payload; `name` is the event name."""

    name: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields that apply (not None), JSON-serialisable."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, None) if key in self.field_names() else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class PretrainRoutineStart(TrainingEvent):
    """A run is queued, starting or retrying; `message` says what happens."""
    name: ClassVar[str] = "on_pretrain_routine_start"
    message: str | None = None
    run_dir: str | None = None
    run_id: int | None = None
    epochs: int | None = None


@dataclass
class PretrainRoutineEnd(TrainingEvent):
    """Model and data are ready; `message` names the base model and the data."""
    name: ClassVar[str] = "on_pretrain_routine_end"
    epochs: int
    batches: int
    run_dir: str
    message: str


@dataclass
class TrainStart(TrainingEvent):
    """The first epoch (`epoch`, > 0 when resuming) is about to start."""
    name: ClassVar[str] = "on_train_start"
    epoch: int
    epochs: int
    batches: int
    params: dict
    run_dir: str
    message: str


@dataclass
class TrainEpochStart(TrainingEvent):
    name: ClassVar[str] = "on_train_epoch_start"
    epoch: int
    epochs: int
    batches: int


@dataclass
class TrainBatchStart(TrainingEvent):
    name: ClassVar[str] = "on_train_batch_start"
    epoch: int
    epochs: int
    batch: int
    batches: int


@dataclass
class TrainBatchEnd(TrainingEvent):
    """`losses`: running mean of the epoch's training losses so far."""
    name: ClassVar[str] = "on_train_batch_end"
    epoch: int
    epochs: int
    batch: int
    batches: int
    losses: dict
    elapsed_s: float
    eta_s: float
    lr: float | None = None


@dataclass
class TrainEpochEnd(TrainingEvent):
    name: ClassVar[str] = "on_train_epoch_end"
    epoch: int
    epochs: int
    losses: dict
    elapsed_s: float
    eta_s: float
    lr: float | None = None


@dataclass
class FitEpochEnd(TrainingEvent):
    """After validation: the epoch's record. `fitness` picks the best checkpoint;
    `confusion_matrix` rows are true classes (detection adds a last 'background' row and
    column); `samples` are a few validation predictions for the TensorBoard grid."""
    name: ClassVar[str] = "on_fit_epoch_end"
    epoch: int
    epochs: int
    losses: dict
    metrics: dict
    elapsed_s: float
    eta_s: float
    samples: list
    fitness: float | None = None
    lr: float | None = None
    confusion_matrix: list | None = None
    class_names: list | None = None


@dataclass
class ModelSave(TrainingEvent):
    name: ClassVar[str] = "on_model_save"
    epoch: int
    epochs: int
    run_dir: str
    best: bool
    message: str


@dataclass
class TrainEnd(TrainingEvent):
    """status 'completed' (with the final `metrics`) or 'cancelled' (resumable)."""
    name: ClassVar[str] = "on_train_end"
    status: str
    epoch: int
    epochs: int
    run_dir: str
    elapsed_s: float
    message: str
    metrics: dict | None = None


@dataclass
class Teardown(TrainingEvent):
    name: ClassVar[str] = "teardown"


PAYLOADS: dict[str, type[TrainingEvent]] = {cls.name: cls for cls in (
    PretrainRoutineStart, PretrainRoutineEnd, TrainStart, TrainEpochStart, TrainBatchStart,
    TrainBatchEnd, TrainEpochEnd, FitEpochEnd, ModelSave, TrainEnd, Teardown)}

# The event names, in the order they fire (batch events repeat inside an epoch).
EVENTS = tuple(PAYLOADS)

Callback = Callable[[str, TrainingEvent], None]


def make_event(event: str, **payload: Any) -> TrainingEvent:
    """The typed payload of `event`; TypeError for an unknown event or field."""
    if event not in PAYLOADS:
        raise TypeError(f"unknown training event {event!r}; known: {', '.join(EVENTS)}")
    return PAYLOADS[event](**payload)


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
        """Build the event's payload, then call every callback of `event` and the '*' ones."""
        typed = make_event(event, **payload)
        for callback in (*self._callbacks.get(event, ()), *self._callbacks.get("*", ())):
            callback(event, typed)
