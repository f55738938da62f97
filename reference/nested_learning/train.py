"""Train a model from a config preset.

    uv run python train.py --config small                      # CPU, about a minute
    uv run python train.py --config small --set train.lr=1e-3  # override any value
    uv run python train.py --config small --resume             # continue from the last checkpoint
    uv run torchrun --nproc_per_node 2 train.py --config small # data-parallel: gloo CPU, nccl CUDA

Writes ``<out_dir>/metrics.csv``, ``<out_dir>/loss.png`` and ``<out_dir>/checkpoint.pt``
(``checkpoint.dcp/`` with ``train.parallel=fsdp``), and logs to ``train.tracker`` if one is set.
SIGTERM or SIGUSR1 (a scheduler's preemption notice) ends the run after the current step with a
checkpoint; ``--resume`` then continues it exactly.
Exit codes: 0 done, 2 bad input, 75 preempted (``PREEMPTED_EXIT_CODE``: resume it).
Reads top to bottom: config → devices → data → model → optimizer → (resume) → loop → plot.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# PyTorch's OpenMP threads spin 300000 times before they sleep: beside one other busy process that
# made a training step 3-20x slower; 1000 spins cost 1.0-1.8x on a quiet machine, depending on
# the machine (the reference's benchmarks/cpu_threads.py). The smaller worst case wins.
# Set before torch loads libgomp; your own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from nested_learning.checkpoint import capture_rng_state, restore_rng_state
from nested_learning.config import ConfigError, ExperimentConfig, TrainConfig, load_config
from nested_learning.data import TextDataset, load_text
from nested_learning.device import autocast, autocast_dtype, get_device, grad_scaler
from nested_learning.distributed import (
    DistributedContext,
    all_reduce_mean,
    cleanup_distributed,
    device_for,
    init_distributed,
)
from nested_learning.metrics import MetricsLogger, plot_loss_curve
from nested_learning.models import create_model
from nested_learning.parallel import (
    checkpoint_exists,
    checkpoint_path,
    load_state,
    save_state,
    wrap_model,
)
from nested_learning.preemption import (
    PREEMPTED_EXIT_CODE,
    PreemptionGuard,
    preempted_message,
)
from nested_learning.tracking import (
    Tracker,
    open_tracker,
    require_tracker,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--config", default="small", help="preset name (small/medium/large) or YAML path"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)",
    )
    parser.add_argument("--steps", type=int, help="shortcut for --set train.steps=N")
    parser.add_argument("--out-dir", help="shortcut for --set train.out_dir=DIR")
    parser.add_argument("--device", help="shortcut for --set train.device=cpu|cuda|mps|auto")
    parser.add_argument("--data", help="shortcut for --set data.path=FILE (a UTF-8 text file)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in <out_dir>"
    )
    parser.add_argument(
        "--auto-resume",
        action="store_true",
        help="resume if <out_dir> has a checkpoint, else start fresh (requeued batch jobs)",
    )
    parser.add_argument(
        "--until",
        type=int,
        metavar="STEP",
        help="stop after STEP (checkpoint saved), e.g. to fit a job time limit",
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> ExperimentConfig:
    shortcuts = {
        "steps": "train.steps",
        "out_dir": "train.out_dir",
        "device": "train.device",
        "data": "data.path",
    }
    overrides = list(args.overrides)
    for attr, key in shortcuts.items():
        if getattr(args, attr) is not None:
            overrides.append(f"{key}={getattr(args, attr)}")
    return load_config(args.config, overrides)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms or 1-d parameters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy; logits ``[B, T, V]``, targets ``[B, T]``."""
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


@torch.no_grad()
def evaluate(
    model: nn.Module, data: TextDataset, cfg: TrainConfig, device: torch.device, dtype: torch.dtype
) -> float:
    """Mean validation loss over ``eval_batches`` fixed batches (same batches every evaluation)."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in range(cfg.eval_batches):
        x, y = data.get_batch("val", cfg.batch_size, cfg.seq_len, generator, device)
        with autocast(device, dtype):
            losses.append(lm_loss(model, x, y).item())
    model.train()
    return sum(losses) / len(losses)


@dataclass
class RunResult:
    """How a run ended: its last validation loss, and whether a signal stopped it early."""

    val_loss: float
    preempted: bool = False


def gather_rng(data_generator: torch.Generator, ctx: DistributedContext) -> list[object]:
    """Every rank's RNG states (so a resumed DDP run draws the same batches)."""
    rng: list[object] = [capture_rng_state(data_generator)]
    if ctx.enabled:
        gathered: list[object] = [None] * ctx.world_size
        torch.distributed.all_gather_object(gathered, rng[0])
        rng = gathered
    return rng


def init_model(cfg: ExperimentConfig, ctx: DistributedContext, device: torch.device) -> nn.Module:
    """The model on ``device``. Under FSDP every rank draws the same initial weights (each keeps
    its own shard of them); DDP instead broadcasts rank 0's weights when it wraps the model."""
    if not (ctx.enabled and cfg.train.parallel == "fsdp"):
        return create_model(**cfg.model).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.train.seed)
        return create_model(**cfg.model).to(device)


def train(
    cfg: ExperimentConfig,
    ctx: DistributedContext,
    resume: bool,
    until: int | None,
    guard: PreemptionGuard | None = None,
    argv: list[str] | None = None,
) -> RunResult:
    """Run the loop; stops early (checkpoint saved) once ``guard`` has seen a signal."""
    tc = cfg.train
    guard = guard or PreemptionGuard()
    device = device_for(ctx, get_device(tc.device))
    dtype = autocast_dtype(device, tc.dtype)
    random.seed(tc.seed + ctx.rank)
    torch.manual_seed(tc.seed + ctx.rank)  # each rank draws different batches
    data_generator = torch.Generator().manual_seed(tc.seed + ctx.rank)

    data = TextDataset(load_text(cfg.data.path), cfg.data.val_fraction)
    model = init_model(cfg, ctx, device)
    train_model = wrap_model(model, ctx, device, tc.parallel)  # fsdp shards `model` in place
    optimizer = make_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, tc) / tc.lr)
    scaler = grad_scaler(device, dtype)

    out_dir = Path(tc.out_dir)
    start, run_id = 0, None
    if resume:
        state = load_state(out_dir, tc.parallel, ctx, model, optimizer, device)
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        restore_rng_state(
            state["rng"][ctx.rank] if ctx.rank < len(state["rng"]) else state["rng"][0],
            data_generator,
        )
        start, run_id = int(state["step"]), state.get("tracker_run_id")
    logger = (
        MetricsLogger(out_dir / "metrics.csv", resume_step=start if resume else None)
        if ctx.is_main
        else None
    )
    tracker = (
        open_tracker(tc.tracker, out_dir, cfg.to_dict(), start if resume else None, run_id)
        if ctx.is_main
        else Tracker()
    )

    def record(step: int, split: str, loss: float, lr: float, tokens_per_s: float = 0.0) -> None:
        if logger:
            logger.log(step, split, loss, lr, tokens_per_s)
        tracker.log(step, split, loss, lr, tokens_per_s)

    def save(step: int) -> Path:
        extra = {
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "rng": gather_rng(data_generator, ctx),
            "config": cfg.to_dict(),
            "world_size": ctx.world_size,
            "tracker_run_id": tracker.run_id,
        }
        return save_state(out_dir, tc.parallel, ctx, model, optimizer, extra)

    n_params = sum(p.numel() for p in model.parameters())
    if ctx.is_main:
        print(
            f"model: {n_params / 1e6:.2f}M parameters | device: {device} | dtype: {dtype} | "
            f"world size: {ctx.world_size} | parallel: {tc.parallel if ctx.enabled else 'none'}"
            + (f" | resumed from step {start}" if resume else "")
        )
    stop = min(tc.steps, until) if until is not None else tc.steps
    val_loss, preempted, done = float("nan"), False, start
    progress = tqdm(
        range(start, stop),
        initial=start,
        total=stop,
        disable=not ctx.is_main,
        desc="train",
        dynamic_ncols=True,
    )
    tick, last_logged = time.perf_counter(), start
    for step in progress:
        x, y = data.get_batch("train", tc.batch_size, tc.seq_len, data_generator, device)
        with autocast(device, dtype):
            loss = lm_loss(train_model, x, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        done = step + 1
        if done % tc.log_interval == 0 or done == stop:
            mean_loss = all_reduce_mean(loss.item(), ctx, device)
            elapsed = time.perf_counter() - tick
            tokens = (done - last_logged) * tc.batch_size * tc.seq_len * ctx.world_size
            tick, last_logged = time.perf_counter(), done
            progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
            record(done, "train", mean_loss, lr, tokens / elapsed)
        if done % tc.eval_interval == 0 or done == tc.steps:
            val_loss = evaluate(model, data, tc, device, dtype)
            record(done, "val", val_loss, lr)
        preempted = done < stop and guard.should_stop(ctx, device)  # the same on every rank
        if preempted or done % tc.checkpoint_interval == 0 or done == stop:
            save(done)
        if preempted:
            break
    progress.close()
    tracker.close(preempted=preempted)
    if logger:
        plot_loss_curve(logger.path, out_dir / "loss.png")
        where = checkpoint_path(out_dir, tc.parallel)
        if preempted:
            message = preempted_message(
                guard, done, tc.steps, str(where), argv or [], ctx.world_size
            )
            print(message, flush=True)
        else:
            print(f"done: step {stop}/{tc.steps} | val loss {val_loss:.4f} | {out_dir}/")
    return RunResult(val_loss, preempted)


def check_before_work(cfg: ExperimentConfig, args: argparse.Namespace) -> bool:
    """Refuse bad input before any work starts; returns whether to resume.

    Raises:
        ConfigError, ValueError, FileNotFoundError: with a message naming what to change.
    """
    tc = cfg.train
    create_model(**cfg.model)  # fail on a bad model section before any work starts
    if cfg.data.path is not None and not Path(cfg.data.path).is_file():
        raise FileNotFoundError(f"data file not found: {cfg.data.path}; pass a UTF-8 text file")
    if tc.parallel == "fsdp" and int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise ConfigError(
            "train.parallel=fsdp shards the model over a process group of 2 or more ranks: "
            "launch with `torchrun --nproc_per_node N train.py ...`, or set train.parallel=ddp"
        )
    require_tracker(tc.tracker)
    found = checkpoint_exists(tc.out_dir, tc.parallel)
    if args.resume and not found:
        raise FileNotFoundError(
            f"--resume: no checkpoint at {checkpoint_path(tc.out_dir, tc.parallel)}; "
            "run without --resume first"
        )
    return bool(args.resume or (args.auto_resume and found))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        resume = check_before_work(cfg, args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ctx = init_distributed(cfg.train.device)
    finished = False
    with PreemptionGuard() as guard:
        try:
            result = train(cfg, ctx, resume, args.until, guard, argv)
            finished = True
        finally:
            cleanup_distributed(ctx, finished=finished)
    return PREEMPTED_EXIT_CODE if result.preempted else 0


if __name__ == "__main__":
    sys.exit(main())
