"""`train CONFIG.yaml --dataset NAME[:vN] [key=value ...]`, `train --resume RUN_ID`,
`train list`, `train queue`.

A progress bar (epoch, batch, losses, ETA) on stderr, or with --events one JSON object per
line on stdout (what the GUI's training worker reads from its child process). With --events
the process is controlled through its stdin, the channel every OS has: JSON lines
`{"cmd": "pause"}`, `{"cmd": "resume"}`, `{"cmd": "cancel"}`, applied between batches.
SIGINT and SIGTERM ask the trainer to stop after the current batch with a resumable
checkpoint (a second SIGINT aborts at once); on POSIX, SIGUSR1/SIGUSR2 also pause/resume.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from src.cli.arguments import row_id
from src.db import runs as runs_repo
from src.db.project import Project
from src.errors import ConfigError

EXIT_CANCELLED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a config (configs/*.yaml); 'train list' shows runs",
        description="Train a model. Overrides are key=value, e.g. epochs=5 lora.enabled=true "
                    "imbalance.focal_loss=true. Multi-GPU: YOLO device=0,1; timm under "
                    "torchrun --nproc_per_node=N main.py train ...")
    _add_options(p)
    # options may follow the config and the overrides: the rest is parsed intermixed below
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="CONFIG [key=value ...]",
                   help="training config YAML then overrides; or 'list' (show runs) or "
                        "'queue' (run the queued trainings)")
    p.set_defaults(handler=_train)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="dataset NAME or NAME:vN of the project, or a dataset folder")
    p.add_argument("--resume", type=row_id, metavar="RUN_ID",
                   help="continue a cancelled or interrupted run from its last checkpoint")
    p.add_argument("--events", action="store_true",
                   help="print one JSON event per line on stdout instead of a progress bar")
    p.add_argument("--json", action="store_true", help="with 'list': one JSON object")
    p.add_argument("--trust", action="store_true",
                   help="trust the base weights file (or, with --resume, the run's "
                        "checkpoints) as it is now: .pt files run code when loaded, so files "
                        "LabelLoop did not write are refused without this")


def _parse_rest(args) -> None:
    inner = argparse.ArgumentParser(prog="labelloop train", add_help=False)
    _add_options(inner)
    inner.add_argument("words", nargs="*")
    parsed = inner.parse_intermixed_args(args.rest)
    for key in ("dataset", "resume"):
        if getattr(parsed, key) is not None:
            setattr(args, key, getattr(parsed, key))
    args.events = args.events or parsed.events
    args.json = args.json or parsed.json
    args.trust = args.trust or parsed.trust
    args.config = parsed.words[0] if parsed.words else None
    args.overrides = parsed.words[1:]
    if args.config and "=" in args.config and not args.config.endswith((".yaml", ".yml")):
        raise ConfigError(f"expected a config file before the overrides, got {args.config!r}",
                          field="CONFIG", hint="python main.py train configs/X.yaml key=value")


def quiet_ultralytics() -> None:
    """Our progress bar / JSON events replace ultralytics' console output, which would
    interleave with the bar and corrupt the --events stream on stdout. Must run before
    ultralytics is imported; YOLO_VERBOSE=true brings its output back."""
    os.environ.setdefault("YOLO_VERBOSE", "false")


def _train(args) -> int:
    _parse_rest(args)
    quiet_ultralytics()
    if args.config == "list":
        return _list(args)
    from src.training.control import RunControl
    from src.training.events import EventBus
    bus, control = EventBus(), RunControl()
    streams = sys.stdout, sys.stderr
    if args.events:
        sys.stdout, sys.stderr = _OutliveReader(sys.stdout), _OutliveReader(sys.stderr)
        bus.on("*", _print_event)
    else:
        ProgressBar().attach(bus)
    previous = _install_signal_handlers(control)
    if args.events:
        from src.training.control import follow_commands
        follow_commands(sys.stdin, control, lambda note: print(note, file=sys.stderr, flush=True))
    try:
        return _run(args, bus, control)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.stdout, sys.stderr = streams


def _run(args, bus, control) -> int:
    with Project.open(args.project) as project:
        if args.config == "queue":
            from src.training.runner import process_queue
            done = process_queue(project, bus=bus, control=control)
            _say(args, f"ran {len(done)} queued training(s)")
            return 0
        try:
            run = _start(args, project, bus, control)
        finally:
            from src.training.distributed import shutdown
            shutdown()
    if run is None:        # a torchrun rank other than 0
        return 0
    if args.events:
        _print_event("run_status", {"run_id": run.id, "status": run.status,
                                    "run_dir": run.run_dir, "error": run.error})
    _say(args, f"run {run.id} {run.status}: {run.run_dir}"
               + (f" — resume with `train --resume {run.id}`" if run.status == "cancelled"
                  else ""))
    return EXIT_CANCELLED if run.status == "cancelled" else 0


def _start(args, project, bus, control):
    from src.training.config import load_config
    from src.training.runner import start_training
    if args.resume is not None:
        if args.config or args.overrides:
            raise ConfigError("--resume continues a run with its own config",
                              field="--resume", hint="leave out CONFIG and key=value")
        if args.trust:
            _trust_inputs(project, run=runs_repo.get_run(project.conn, args.resume))
        return start_training(project, None, None, bus=bus, control=control,
                              resume_run_id=args.resume)
    if not args.config:
        raise ConfigError("no training config given", field="CONFIG",
                          hint="e.g. python main.py train configs/detection.yaml --dataset NAME")
    if not args.dataset:
        raise ConfigError("no dataset given", field="--dataset",
                          hint="pass --dataset NAME[:vN] (see `dataset list`) or a folder")
    cfg = load_config(args.config, args.overrides)
    if args.trust:
        _trust_inputs(project, cfg=cfg)
    return start_training(project, cfg, args.dataset, bus=bus, control=control)


def _trust_inputs(project, *, cfg=None, run=None) -> None:
    """--trust: the user vouches for the files this training would unpickle."""
    from src.training import trust
    from src.training.runner import base_weight_inputs
    if run is not None and run.run_dir:
        paths = trust.training_inputs(run_dir=project.abspath(run.run_dir),
                                      model_type=run.model_type)
    else:
        paths = base_weight_inputs(project, cfg) if cfg is not None else []
    trust.trust_paths(project.conn, paths)


def _list(args) -> int:
    with Project.open(args.project, create=False) as project:
        rows = runs_repo.list_runs(project.conn)
    if args.json:
        print(json.dumps([{"id": r.id, "name": r.name, "task": r.task, "model_type": r.model_type,
                           "status": r.status, "run_dir": r.run_dir, "queued_at": r.queued_at,
                           "started_at": r.started_at, "finished_at": r.finished_at,
                           "error": r.error} for r in rows], indent=2))
        return 0
    if not rows:
        print("no training runs yet")
    for r in rows:
        extra = f"  ({r.error})" if r.error else ""
        print(f"{r.id:>4}  {r.status:<9}  {r.task:<8}  {r.model_type}:{r.name:<20}  "
              f"{r.run_dir or ''}{extra}")
    return 0


def _print_event(event: str, payload: dict) -> None:
    sys.stdout.write(json.dumps({"event": event, **payload}, default=str) + "\n")
    sys.stdout.flush()


class _OutliveReader:
    """A stdout/stderr that survives its reader: when the supervising window closes and the
    user chose "keep training", writes go nowhere and the run goes on (the store, TensorBoard
    and the run folder still record it) instead of dying of a broken pipe."""

    def __init__(self, stream) -> None:
        self._stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except (BrokenPipeError, OSError, ValueError):
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.gone = True

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _say(args, text: str) -> None:
    print(text, file=sys.stderr if args.events else sys.stdout)


def _install_signal_handlers(control) -> dict:
    """SIGINT/SIGTERM → graceful stop; where the OS has them, the pause/resume pair
    (SIGUSR1/SIGUSR2) for shell users. Returns the handlers they replace."""
    from src.platform_support import pause_resume_signals, stop_signals

    def on_signal(signum, _frame) -> None:
        if control.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping after the current batch "
              f"(checkpoint kept; Ctrl+C again aborts)", file=sys.stderr)
        control.request_stop()

    handlers = {s: on_signal for s in stop_signals()}
    pair = pause_resume_signals()
    if pair is not None:
        def on_pause(signum, _frame) -> None:
            control.pause() if signum == pair[0] else control.resume()
            print(f"\n{'paused (send resume to continue)' if control.paused else 'resumed'}",
                  file=sys.stderr)
        handlers.update({pair[0]: on_pause, pair[1]: on_pause})
    previous = {s: signal.getsignal(s) for s in handlers}
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    return previous


class ProgressBar:
    """tqdm bar per epoch over its batches, with losses and ETA; messages above it."""

    def __init__(self) -> None:
        self.bar = None

    def attach(self, bus) -> None:
        bus.on("*", self._on_event)

    def _on_event(self, event: str, p: dict) -> None:
        from tqdm import tqdm
        if p.get("message"):
            tqdm.write(str(p["message"]), file=sys.stderr)
        if event == "on_train_epoch_start":
            self._close()
            self.bar = tqdm(total=p.get("batches"), file=sys.stderr, leave=True,
                            desc=f"epoch {p['epoch'] + 1}/{p.get('epochs', '?')}", unit="batch")
        elif event == "on_train_batch_end" and self.bar is not None:
            self.bar.update(1)
            losses = {k: f"{v:.4f}" for k, v in (p.get("losses") or {}).items()}
            self.bar.set_postfix(**losses, eta=_duration(p.get("eta_s")))
        elif event == "on_fit_epoch_end":
            self._close()
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in (p.get("metrics") or {}).items()
                                if isinstance(v, (int, float)))
            tqdm.write(f"epoch {p.get('epoch', 0) + 1}: {metrics}  (eta "
                       f"{_duration(p.get('eta_s'))})", file=sys.stderr)
        elif event == "on_train_end":
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
