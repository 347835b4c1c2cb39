"""Typed event payloads: the contract of docs/events.md, enforced and documented alike."""
from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from src.training.events import EVENTS, PAYLOADS, EventBus, TrainBatchEnd, make_event

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
BATCH = dict(epoch=0, epochs=2, batch=1, batches=3, losses={"loss": 0.5}, elapsed_s=1.0,
             eta_s=2.0)


def test_a_field_the_contract_lacks_or_a_missing_one_is_refused():
    with pytest.raises(TypeError, match="unexpected keyword argument 'loss'"):
        make_event("on_train_batch_end", **BATCH, loss=0.5)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'eta_s'"):
        make_event("on_train_batch_end", **{k: v for k, v in BATCH.items() if k != "eta_s"})
    with pytest.raises(TypeError, match="unknown training event 'on_epoch_end'"):
        make_event("on_epoch_end", epoch=0)


def test_payload_reads_like_the_dict_it_was_and_re_emits_unchanged():
    seen = []
    outer, inner = EventBus(), EventBus()
    inner.on("*", lambda name, p: outer.emit(name, **p))       # as the runner forwards
    outer.on("on_train_batch_end", lambda name, p: seen.append(p))
    inner.emit("on_train_batch_end", **BATCH)
    (payload,) = seen
    assert isinstance(payload, TrainBatchEnd) and payload.epoch == 0
    assert payload["batch"] == 1 and payload.get("lr") is None and "lr" not in payload
    assert dict(payload) == payload.to_dict() == BATCH
    assert json.loads(json.dumps({"event": "x", **payload})) == {"event": "x", **BATCH}


def test_cli_event_lines_keep_their_old_shape(capsys):
    from src.cli.commands.train import _print_event

    _print_event("on_train_batch_end", make_event("on_train_batch_end", **BATCH, lr=0.01))
    line = json.loads(capsys.readouterr().out)
    assert line == {"event": "on_train_batch_end", **BATCH, "lr": 0.01}


def _documented() -> dict[str, tuple[set[str], set[str]]]:
    """event -> (required fields, optional fields) from the table of docs/events.md."""
    table = {}
    for row in re.findall(r"^\| `(\w+)` \| ([^|]*) \|", DOC.read_text(), re.M):
        name, cell = row
        required = set(re.findall(r"\w+", " ".join(re.findall(r"\*\*([^*]+)\*\*", cell))))
        everything = set(re.findall(r"[a-z_]+", cell.replace("—", "")))
        table[name] = (required, everything - required)
    return table


def test_docs_events_md_lists_every_event_and_field_as_the_code_has_them():
    documented = _documented()
    assert list(documented) == list(EVENTS)
    for name, cls in PAYLOADS.items():
        required = {f.name for f in fields(cls)
                    if f.default is MISSING and f.default_factory is MISSING}
        optional = {f.name for f in fields(cls)} - required
        assert documented[name] == (required, optional), name
