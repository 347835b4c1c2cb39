"""torchrun support: who am I (rank), how many are we, and agreeing on flags across ranks.

`torchrun --nproc_per_node=N main.py train ...` sets RANK/WORLD_SIZE/LOCAL_RANK; every rank
runs the same command, rank 0 alone writes files, the database and events.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    def any_flag(self, flag: bool) -> bool:
        """True on every rank when it is True on any rank (e.g. a stop request)."""
        if self.size == 1:
            return bool(flag)
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item())

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's value of `flag` on every rank (e.g. early stopping)."""
        if self.size == 1:
            return bool(flag)
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        torch_dist.broadcast(t, src=0)
        return bool(t.item())

    def broadcast_object(self, obj):
        """Rank 0's `obj` (picklable) on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.size > 1:
            torch_dist.barrier()


def world() -> World:
    """This process's place in a torchrun job; initialises the process group once."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not torch_dist.is_initialized():
        # gloo carries the small CPU-side flags too; nccl when every rank has a GPU
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend=backend)
    return World(rank=int(os.environ.get("RANK", "0")), size=size,
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def device_for_rank(w: World, device: str) -> str:
    """Each rank takes its own GPU (cuda:LOCAL_RANK); CPU ranks share the CPU."""
    if w.size > 1 and device.startswith("cuda"):
        torch.cuda.set_device(w.local_rank)
        return f"cuda:{w.local_rank}"
    return device


def shutdown() -> None:
    """Leave the process group (torchrun jobs) so the process exits cleanly."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
