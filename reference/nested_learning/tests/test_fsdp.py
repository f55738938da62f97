"""``train.parallel=fsdp`` (``fully_shard`` + ``torch.distributed.checkpoint``) with 2 CPU
processes on gloo: the losses equal DDP's, and a sharded checkpoint resumes exactly.

FSDP reduce-scatters gradients where DDP all-reduces them, so float32 sums run in another order:
the losses agree to ``DDP_TOLERANCE``, not bit for bit. Resuming FSDP from its own checkpoint is
exact (up to the CSV's 6 decimals).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from nested_learning.metrics import read_metrics

DDP_TOLERANCE = 1e-4
RESUME_TOLERANCE = 1e-5
STEPS = 8


def test_the_model_is_one_fsdp_unit_unless_it_lists_finer_ones() -> None:
    from torch import nn

    from nested_learning.parallel import shard_units

    class Blocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))

        def fsdp_units(self) -> list[nn.Module]:
            return list(self.blocks)

    plain = nn.Sequential(nn.Linear(2, 2), nn.ModuleList([nn.Linear(2, 2)]))
    assert shard_units(plain) == []  # safe for any forward: the whole model is gathered
    model = Blocks()
    assert shard_units(model) == list(model.blocks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _worker(rank: int, ports: list[int], args: list[str], out: str, queue: Any) -> None:
    """Four runs in one process pair: ddp, fsdp, fsdp stopped at step 3, fsdp resumed."""
    import train

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    runs = [
        ("ddp", ["--set", "train.parallel=ddp"]),
        ("fsdp", ["--set", "train.parallel=fsdp"]),
        ("split", ["--set", "train.parallel=fsdp", "--until", "3"]),
        ("split", ["--set", "train.parallel=fsdp", "--resume"]),
    ]
    codes = []
    for port, (name, extra) in zip(ports, runs, strict=True):
        os.environ["MASTER_PORT"] = str(port)
        codes.append(train.main([*args, "--out-dir", f"{out}/{name}", *extra]))
    queue.put((rank, codes))


def losses(run_dir: Path) -> dict[int, float]:
    rows = read_metrics(run_dir / "metrics.csv")
    return {int(r["step"]): float(r["loss"]) for r in rows if r["split"] == "train"}


@pytest.mark.slow
def test_fsdp_matches_ddp_and_resumes_exactly_from_a_sharded_checkpoint(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    import torch.multiprocessing as mp

    args = [*tiny_train_args, "--steps", str(STEPS)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    ports = [free_port() for _ in range(4)]
    procs = [
        ctx.Process(target=_worker, args=(r, ports, args, str(tmp_path), queue)) for r in range(2)
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results == {0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}
    sharded = tmp_path / "fsdp" / "checkpoint.dcp"
    assert (sharded / "extra.pt").is_file() and len(list(sharded.glob("*.distcp"))) == 2
    ddp, fsdp, split = (losses(tmp_path / name) for name in ("ddp", "fsdp", "split"))
    assert sorted(fsdp) == sorted(split) == list(range(1, STEPS + 1))
    for step, loss in ddp.items():
        assert fsdp[step] == pytest.approx(loss, abs=DDP_TOLERANCE), f"fsdp vs ddp, step {step}"
        assert split[step] == pytest.approx(fsdp[step], abs=RESUME_TOLERANCE), f"resume {step}"
