"""Data-parallel training under ``torchrun``: gloo on CPU, nccl on CUDA.

``torchrun --nproc_per_node N train.py ...`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
a plain ``python train.py`` sets none of them and runs as a single process.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_preference: str = "auto") -> DistributedContext:
    """Join the process group when launched by ``torchrun``; otherwise a single-process context."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext()
    ctx = DistributedContext(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ["WORLD_SIZE"]),
    )
    use_cuda = torch.cuda.is_available() and device_preference in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return ctx


def device_for(ctx: DistributedContext, device: torch.device) -> torch.device:
    """Each rank uses its own GPU; CPU and MPS are shared."""
    if device.type == "cuda" and ctx.enabled:
        return torch.device("cuda", ctx.local_rank)
    return device


def all_reduce_mean(value: float, ctx: DistributedContext, device: torch.device) -> float:
    """Average a Python float over all ranks (identity in a single process)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / ctx.world_size


def cleanup_distributed(ctx: DistributedContext, *, finished: bool = True) -> None:
    """Leave the process group (safe to call in a single process).

    Call it once the DDP model is out of scope. After a finished run the order matters for a
    clean exit: the barrier keeps a rank from leaving while a peer still works (rank 0 saves and
    plots after the last collective); the collection frees the DDP reducer's reference to the
    group, so the group and its communication threads are torn down here, while the interpreter
    is alive. A gloo thread left to release a Python-owned tensor during interpreter shutdown
    aborts the process ("terminate called without an active exception", SIGABRT) after a
    successful run. ``finished=False`` (a rank failed) skips the barrier, which its peers, stuck
    in another collective, would never reach.
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()
    gc.collect()
