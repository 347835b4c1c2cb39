"""Run manager: one training at a time per machine, a queue, run folders, records, outputs.

`start_training` resolves the dataset, checks free disk space, records the run (queued),
creates runs/<id>-<name>/ with the resolved config.yaml, then takes the machine-wide
training lock (a lock file, $LABELLOOP_LOCK_DIR or ~/.cache/labelloop/train.lock). Without the
lock the run stays 'queued' in the database (it survives restarts) and the process holding
the lock runs it after its own, oldest first. With it, the runner attaches the DB epoch
logger and TensorBoard to the event bus, trains through `create_trainer(cfg)`, writes
metadata.json, report.json/report.md, and registers the merged model as a ModelVersion.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import torch
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from src.atomic_files import write_text_atomic
from src.processes import pid_alive
from src.db import datasets as datasets_repo
from src.db import model_versions, runs
from src.db.connection import transaction
from src.db.project import Project
from src.db.records import DatasetRecord, ModelVersion, TrainingRun
from src.errors import DatasetError, LabelLoopError, TrainingError
from src.training import distributed as dist
from src.training import trust
from src.training.config import TrainConfig, config_from_dict, config_to_dict, save_config
from src.training.control import RunControl
from src.training.device import resolve_device
from src.training.events import EventBus
from src.training.outcome import TrainOutcome
from src.training.reporting import (build_metadata, build_report, confusion_labels,
                                   report_markdown, write_json)
from src.training.run_channel import attach_event_log, control_file_commands
from src.training.tensorboard_log import TensorBoardLogger
from src.training.trainers import create_trainer

LOCK_NAME = "train.lock"
DATASET_KEY = "_dataset"          # where a run's dataset reference is kept in its config
_MB = 1024 * 1024
_DISK_MARGIN = 64 * _MB           # logs, reports, TensorBoard images
_YOLO_PARAMS = {"n": 3.5e6, "s": 11.5e6, "m": 27e6, "l": 46e6, "x": 71e6}
RESUMABLE = ("cancelled", "failed", "paused", "running")


# -- the machine-wide lock -----------------------------------------------------------------

def lock_path() -> Path:
    root = os.environ.get("LABELLOOP_LOCK_DIR") or Path.home() / ".cache" / "labelloop"
    return Path(root) / LOCK_NAME


class MachineLock:
    """An exclusive, non-blocking lock file (the `filelock` package: flock on POSIX,
    LockFileEx on Windows); the OS releases it when the process dies. The holder's pid is
    written beside it (`train.lock.pid`) for people and tools that ask who trains."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else lock_path()
        self._lock: FileLock | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except FileLockTimeout:
            return False
        self._lock = lock
        write_text_atomic(self.pid_path, str(os.getpid()))
        return True

    def release(self) -> None:
        if self._lock is not None:
            self.pid_path.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    @property
    def pid_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pid")

    @property
    def held(self) -> bool:
        return self._lock is not None


# -- public API ----------------------------------------------------------------------------

def start_training(project: Project, cfg: TrainConfig | None, dataset_ref: str | Path | None, *,
                   bus: EventBus | None = None, control: RunControl | None = None,
                   resume_run_id: int | None = None) -> TrainingRun:
    """Queue a training and run it now if this machine is free; returns the run's record.

    The returned run is 'queued' when another training holds the machine; otherwise it is
    finished ('completed', 'cancelled' or 'failed' — a failure is re-raised after recording).
    Under torchrun, rank 0 does all of this and the other ranks only train.
    """
    bus, control = bus or EventBus(), control or RunControl()
    world = dist.world()
    if world.size > 1 and cfg is not None and cfg.model_type == "yolo":
        raise TrainingError("YOLO trains on several GPUs by itself, not under torchrun",
                            field="device", hint="run `python main.py train ... device=0,1` "
                                                 "without torchrun")
    if world.rank != 0:
        return _follow_rank0(project, world, control)
    conn = project.connect()
    lock = MachineLock()
    try:
        if resume_run_id is not None:
            run = _check_resumable(project, conn, resume_run_id)
            trust.check_training_inputs(conn, trust.training_inputs(
                run_dir=project.abspath(run.run_dir), model_type=run.model_type),
                resume_run=run.id)
        else:
            _check_base_weights(project, conn, cfg)
            run = enqueue(project, conn, cfg, dataset_ref)
        if not lock.try_acquire():
            if world.size > 1 or resume_run_id is not None:
                world.broadcast_object(None)
                raise TrainingError("another training is running on this machine",
                                    path=lock.path, hint="wait for it to finish, then try "
                                                         "again")
            bus.emit("on_pretrain_routine_start", run_dir=run.run_dir,
                     message=f"run {run.id} queued: another training is running on this "
                             f"machine (lock {lock.path})")
            return runs.get_run(conn, run.id)
        _fail_stale_runs(conn)
        if resume_run_id is not None:
            _execute(project, conn, runs.update_run(conn, run.id, status="running",
                                                    pid=os.getpid(), error=None),
                     bus, control, resume=True, world=world)
        elif world.size > 1:
            claimed = runs.update_run(conn, run.id, status="running", pid=os.getpid())
            _execute(project, conn, claimed, bus, control, resume=False, world=world)
        else:
            _drain_queue(project, conn, bus, control, until=run.id)
        if world.size == 1 and not control.stop_requested:
            _drain_queue(project, conn, bus, control)
        return runs.get_run(conn, run.id)
    finally:
        lock.release()
        conn.close()


def process_queue(project: Project, *, bus: EventBus | None = None,
                  control: RunControl | None = None) -> list[TrainingRun]:
    """Run every queued training of this project, oldest first, if the machine is free."""
    bus, control = bus or EventBus(), control or RunControl()
    conn = project.connect()
    lock = MachineLock()
    try:
        if not lock.try_acquire():
            return []
        _fail_stale_runs(conn)
        return _drain_queue(project, conn, bus, control)
    finally:
        lock.release()
        conn.close()


def enqueue(project: Project, conn: sqlite3.Connection, cfg: TrainConfig,
            dataset_ref: str | Path) -> TrainingRun:
    """Check the dataset and the disk, record a 'queued' run and create its folder."""
    record, data = resolve_data(project, cfg, dataset_ref)
    check_disk_space(cfg, [project.runs_dir, project.models_dir])
    stored = {**config_to_dict(cfg), DATASET_KEY: {
        "ref": str(dataset_ref), "path": project.relpath(data),
        "name": record.name if record else None, "version": record.version if record else None,
        "hash": record.content_hash if record else None}}
    run = runs.add_run(conn, TrainingRun(name=cfg.name, task=cfg.task, model_type=cfg.model_type,
                                         config=stored, dataset_id=record.id if record else None,
                                         status="queued"))
    run_dir = project.runs_dir / f"{run.id}-{cfg.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    return runs.update_run(conn, run.id, run_dir=project.relpath(run_dir))


def resolve_data(project: Project, cfg: TrainConfig,
                 ref: str | Path) -> tuple[DatasetRecord | None, Path]:
    """A dataset folder path, or 'NAME[:vN]' of the project → (record or None, train input)."""
    if ref is None or not str(ref).strip():
        raise DatasetError("no dataset given", field="dataset",
                           hint="pass --dataset NAME[:vN] or a dataset folder")
    path = Path(ref).expanduser()
    record = None
    if not path.exists():
        from src.data.datasets import resolve_dataset
        record, path = resolve_dataset(project, str(ref))
        want = ("classify", "crops") if cfg.task == "classify" else (cfg.task,)
        if record.task not in want:
            raise DatasetError(f"dataset {record.name} v{record.version} is a '{record.task}' "
                               f"dataset but this config trains '{cfg.task}'", field="dataset",
                               hint=f"build a {' or '.join(want)} dataset, or use another config")
    return record, _train_input(cfg, path.resolve())


def _train_input(cfg: TrainConfig, path: Path) -> Path:
    """detect/segment train on data.yaml; classifiers on the split folders' root."""
    if cfg.task in ("detect", "segment"):
        path = path / "data.yaml" if path.is_dir() else path
        if not path.is_file():
            raise DatasetError("no data.yaml in the dataset folder", path=path.parent,
                               field="dataset", hint="rebuild the dataset")
        return path
    return path.parent if path.is_file() else path


def expected_output_bytes(cfg: TrainConfig) -> int:
    """Rough size of what a run writes: checkpoints with optimizer state, best, merged model,
    its registered copy, plus logs."""
    params = _parameter_estimate(cfg)
    return int(params * 4 * 7 + _DISK_MARGIN)


def _parameter_estimate(cfg: TrainConfig) -> float:
    if cfg.model_type == "timm":
        import timm
        with torch.device("meta"):
            model = timm.create_model(cfg.model, pretrained=False)
        return sum(p.numel() for p in model.parameters())
    size = next((s for s in "nsmlx" if cfg.model.rstrip("0123456789-_.").endswith(s)), "x")
    return _YOLO_PARAMS[size]


def check_disk_space(cfg: TrainConfig, folders: list[Path]) -> None:
    """Refuse (TrainingError) when a folder the run writes to lacks the expected space."""
    need = expected_output_bytes(cfg)
    for folder in folders:
        existing = _existing_parent(folder)
        free = shutil.disk_usage(existing).free
        if free < need:
            raise TrainingError(
                f"not enough free disk space for this training: about {need / _MB:.0f} MB "
                f"needed, {free / _MB:.0f} MB free", path=existing,
                hint="free some space (old runs/ folders) or move the project to a larger disk")


def _existing_parent(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


# -- running -------------------------------------------------------------------------------

def _drain_queue(project, conn, bus, control, until: int | None = None) -> list[TrainingRun]:
    """Claim and run queued trainings in order; stop after run `until` or when cancelled."""
    done = []
    while not control.stop_requested:
        run = runs.claim_next_queued(conn, os.getpid())
        if run is None:
            break
        done.append(_execute(project, conn, run, bus, control, resume=False, world=dist.World()))
        if run.id == until:
            break
    return done


def _execute(project, conn, run: TrainingRun, bus: EventBus, control: RunControl, *,
             resume: bool, world: dist.World) -> TrainingRun:
    """Train a claimed ('running') run to its end and record the result; any failure,
    even before training starts (a stored config no longer valid), marks it 'failed'."""
    logger = None
    try:
        stored = dict(run.config)
        dataset = stored.pop(DATASET_KEY, {})
        cfg = config_from_dict(stored)
        run_dir = project.abspath(run.run_dir)
        data = project.abspath(dataset["path"])
        world.broadcast_object({"cfg": config_to_dict(cfg), "data": str(data),
                                "run_dir": str(run_dir), "resume": resume})
        # a bus per run: its DB and TensorBoard listeners end with it; the caller's bus
        # still hears every event
        run_bus = EventBus()
        run_bus.on("*", lambda event, payload: bus.emit(event, **payload))
        logger = _attach_callbacks(conn, run, cfg, run_dir, run_bus)
        attach_event_log(run_bus, run_dir)      # a reopened window follows the run from it
        run_bus.emit("on_pretrain_routine_start", run_id=run.id, run_dir=str(run_dir),
                     message=f"run {run.id} ({cfg.model_type}:{cfg.model} {cfg.task}) "
                             f"{'resuming' if resume else 'starting'} in {run_dir}")
        started = time.monotonic()
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        def record_hold(held: bool) -> None:  # a paused run shows as 'paused' in the store
            runs.update_run(conn, run.id, status="paused" if held else "running")

        _record_checkpoints(conn, run_dir, run_bus)
        with control.hold_listener(record_hold), trust.gate(conn), \
                control_file_commands(run_dir, control):
            outcome = create_trainer(cfg).train(data, run_dir, run_bus, control, resume,
                                                project=project,
                                                base_dir=project.base_weights_dir)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, LabelLoopError) else f"{type(exc).__name__}: {exc}"
        runs.update_run(conn, run.id, status="failed", error=message[:2000])
        if logger:
            logger.writer.close()
        raise
    timings = {"started_at": started_at, "duration_s": round(time.monotonic() - started, 2),
               "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return _record_outcome(project, conn, run, cfg, dataset, outcome, timings, logger)


def _check_base_weights(project, conn, cfg: TrainConfig) -> None:
    """A base weights file must be trusted (pickles run code), a registered version verified."""
    if cfg.weights and cfg.weights.startswith("model:"):
        from src.training.models import ModelManager
        manager = ModelManager(project, conn)
        manager.weights_path(manager.get(cfg.weights))
    trust.check_training_inputs(conn, base_weight_inputs(project, cfg))


def base_weight_inputs(project: Project, cfg: TrainConfig) -> list[Path]:
    """The pickles a new run of `cfg` would load before training (see trust.py)."""
    from src.training.base_model import local_base_file
    return trust.training_inputs(weights=cfg.weights, model_type=cfg.model_type,
                                 base_file=local_base_file(cfg, project.base_weights_dir))


def _record_checkpoints(conn, run_dir: Path, bus: EventBus) -> None:
    """Every checkpoint this run writes is LabelLoop's own: a later resume may load it."""
    def record(_event: str, _payload: dict) -> None:
        for path in [*(run_dir / "weights").glob("*.pt"), run_dir / "model.pt"]:
            if path.is_file():
                trust.record_written(conn, path, "run")

    bus.on("on_model_save", record)
    bus.on("on_train_end", record)


def _attach_callbacks(conn, run, cfg, run_dir, bus) -> TensorBoardLogger | None:
    def log_epoch(_event: str, payload: dict) -> None:
        if "epoch" in payload and ("metrics" in payload or "losses" in payload):
            runs.record_epoch(conn, run.id, int(payload["epoch"]), {
                "losses": payload.get("losses", {}), "metrics": payload.get("metrics", {}),
                "lr": payload.get("lr"), "elapsed_s": payload.get("elapsed_s")})

    bus.on("on_fit_epoch_end", log_epoch)
    if not cfg.tensorboard:
        return None
    return TensorBoardLogger(run_dir / "tensorboard", cfg.log_images_every).attach(bus)


def _record_outcome(project, conn, run, cfg, dataset, outcome: TrainOutcome, timings,
                    logger) -> TrainingRun:
    run_dir = project.abspath(run.run_dir)
    dataset_info = {k: dataset.get(k) for k in ("name", "version", "hash", "ref", "path")}
    meta = build_metadata(run_id=run.id, cfg=cfg, dataset=dataset_info, outcome=outcome,
                          timings=timings, device=_device_words(cfg))
    write_json(run_dir / "metadata.json", meta)
    if outcome.status == "completed":
        report = build_report(run_id=run.id, cfg=cfg, dataset=dataset_info, outcome=outcome)
        write_json(run_dir / "report.json", report)
        write_text_atomic(run_dir / "report.md", report_markdown(report))
    if logger:
        final = {"confusion_matrix": outcome.metrics.get("confusion_matrix"),
                 "class_names": confusion_labels(outcome.metrics)}
        logger.finish(_hparams(cfg), outcome.metrics if outcome.status == "completed" else {},
                      final if outcome.status == "completed" else None)
    runs.update_run(conn, run.id, status=outcome.status, base_model=outcome.base_model_source)
    if outcome.status == "completed" and outcome.merged_model:
        register_model(project, conn, run, cfg, outcome)
    return runs.get_run(conn, run.id)


def register_model(project: Project, conn, run: TrainingRun, cfg: TrainConfig,
                   outcome: TrainOutcome) -> ModelVersion:
    """Copy the merged model (and adapters) to models/<task>/<name>/v<N>/ and register it
    with the sha256 of each file, its classes, dataset and lineage; it becomes the task's
    active model when the task has none."""
    from src.training.models.registry import (model_task, record_trained_version,
                                              trained_classes)

    dataset = datasets_repo.get_dataset_by_id(conn, run.dataset_id) if run.dataset_id else None
    task = model_task(cfg.task, dataset.task if dataset else None)
    merged = Path(outcome.merged_model)
    parent = project.models_dir / task / cfg.name
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".register-{os.getpid()}-"))
    placed = None
    try:
        for item in [merged, merged.with_name("model_config.json"),
                     project.abspath(run.run_dir) / "metadata.json"]:
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
        if outcome.adapter_dir and Path(outcome.adapter_dir).is_dir():
            shutil.copytree(outcome.adapter_dir, tmp / "adapters")
        metrics = {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))}
        # The version, the folder and the row are taken together under the write lock, so
        # two runs registering the same name at once get distinct versions and folders.
        with transaction(conn):
            version = model_versions.next_version(conn, task, cfg.name)
            # models/ is shared by every project on the machine: another's v<N> may be there.
            dest = parent / f"v{version}"
            if dest.exists():
                dest = dest.with_name(f"v{version}-{project.root.name}-run{run.id}-"
                                      f"{uuid.uuid4().hex[:6]}")
            os.replace(tmp, dest)
            placed = dest
            return record_trained_version(project, conn, run, cfg, dest, dest / merged.name,
                                          metrics, trained_classes(cfg.task, outcome))
    except BaseException:
        if placed is not None:
            shutil.rmtree(placed, ignore_errors=True)  # its row was rolled back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- resume, stale runs, other ranks -------------------------------------------------------

def _check_resumable(project, conn, run_id: int) -> TrainingRun:
    run = runs.get_run(conn, run_id)
    if run is None:
        raise TrainingError(f"no training run {run_id} in this project", field="--resume",
                            hint="see `python main.py train list`")
    if run.status not in RESUMABLE:
        raise TrainingError(f"run {run_id} is {run.status}; only a cancelled, failed or "
                            f"interrupted run can be resumed", field="--resume")
    if run.status in ("running", "paused") and pid_alive(run.pid) and run.pid != os.getpid():
        raise TrainingError(f"run {run_id} is still running (pid {run.pid})", field="--resume",
                            hint="cancel it first, or wait for it")
    if not project.abspath(run.run_dir or "").is_dir():
        raise TrainingError(f"the folder of run {run_id} is gone", path=run.run_dir,
                            hint="start a new run")
    return run


def _fail_stale_runs(conn) -> None:
    """With the machine lock held, a run still marked running/paused lost its process."""
    for status in ("running", "paused"):
        for run in runs.list_runs(conn, status):
            runs.update_run(conn, run.id, status="failed",
                            error=f"the training process (pid {run.pid}) ended without "
                                  f"finishing; resume with `train --resume {run.id}`")


def _follow_rank0(project, world: dist.World, control: RunControl) -> TrainingRun | None:
    """A non-zero torchrun rank: train what rank 0 decided, write nothing."""
    plan = world.broadcast_object(None)
    if plan is None:
        return None
    from src.training.timm_trainer import train_timm
    cfg = config_from_dict(plan["cfg"])
    train_timm(cfg, Path(plan["data"]), Path(plan["run_dir"]), EventBus(), control,
               plan["resume"], base_weights=None, base_message="(rank > 0)")
    return None


def _hparams(cfg: TrainConfig) -> dict:
    return {"model": cfg.model, "epochs": cfg.epochs, "batch": cfg.batch, "imgsz": cfg.imgsz,
            "lr": cfg.lr, "optimizer": cfg.optimizer, "lora": cfg.lora.enabled,
            "lora_rank": cfg.lora.rank, "focal_loss": cfg.imbalance.focal_loss,
            "class_weights": cfg.imbalance.class_weights,
            "balanced_sampler": cfg.imbalance.balanced_sampler}


def _device_words(cfg: TrainConfig) -> str:
    try:
        device = resolve_device(cfg.device)
    except LabelLoopError:
        device = cfg.device
    size = dist.world().size
    return f"{device} x{size} (DistributedDataParallel)" if size > 1 else device
