"""timm training under torchrun: 2 CPU processes (gloo), DistributedSampler, rank 0 writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.db import model_versions, runs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(project, binary_dataset):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "main.py", "--project", str(project.root), "train", "configs/crop_classifier.yaml",
         "--dataset", str(binary_dataset), "model=test_resnet", "epochs=2", "batch=4",
         "imgsz=32", "workers=0", "device=cpu", "patience=0", "tensorboard=false", "--events"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # rank 0 alone emits: each epoch once; 12 images / 2 ranks / batch 4 = 2 batches per rank
    starts = [e for e in events if e["event"] == "on_train_epoch_start"]
    assert [e["epoch"] for e in starts] == [0, 1] and {e["batches"] for e in starts} == {2}
    assert events[-1] == {"event": "run_status", "run_id": 1, "status": "completed",
                          "run_dir": "runs/1-view_classifier", "error": None}
    (run,) = runs.list_runs(project.conn)
    assert run.status == "completed"
    assert [e.epoch for e in runs.list_epochs(project.conn, run.id)] == [0, 1]
    meta = json.loads((project.abspath(run.run_dir) / "metadata.json").read_text())
    assert meta["device"] == "cpu x2 (DistributedDataParallel)"
    assert len(model_versions.list_model_versions(project.conn)) == 1
