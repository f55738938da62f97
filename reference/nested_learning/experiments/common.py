"""Shared helpers of the small-scale experiments (arXiv 2512.24695, spec §12).

Every experiment script follows the same shape::

    args = parse_args("what it does", argv, quick_seeds=3, default_seeds=10)
    timer = Timer()
    per_seed = {"metric": {"method": [value for each seed]}}       # numbers only, see record()
    checks = [Check(...)]                                           # the stated verdict rules
    return finish(name, fig, args=args, argv=argv, timer=timer, claim=..., checks=checks,
                  per_seed=per_seed, ...)  # results/<name>.png and results/<name>.json

:func:`finish` saves the figure, assembles the result with :func:`build_payload` and writes it
with :func:`write_result`. The neural experiments (2-4) train with :func:`fit`.

The verdict is never typed by hand: each :class:`Check` compares per-seed numbers with the rule of
:func:`verdict_from_improvements`, and :func:`overall_verdict` combines the primary checks.
``experiments/make_results_readme.py`` turns every ``results/*.json`` into ``results/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: experiments run on CI and in subprocesses

import torch
from ledger import (
    Check,
    Control,
    PerSeed,
    judge,
    kind,
    record,
    summarize,
    validate_verdicts,
)
from matplotlib.figure import Figure
from torch import Tensor, nn

from nested_learning.memory_use import MEMORY_SETTINGS, gate_statistics, memory_ablation

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "results"

#: Keys every result JSON has (checked by :func:`validate_payload` and the tests).
REQUIRED_KEYS = (
    "experiment",
    "title",
    "claim",
    "paper_ref",
    "config",
    "seeds",
    "per_seed",
    "summary",
    "controls",
    "checks",
    "verdict",
    "verdict_rule",
    "command",
    "size",
    "wall_time_s",
    "torch_version",
    "python_version",
    "plot",
)


# --------------------------------------------------------------------------- CLI
@dataclass(frozen=True)
class RunArgs:
    """Parsed command line shared by all experiments."""

    quick: bool
    seeds: list[int]
    out: Path
    progress: bool

    @property
    def size(self) -> str:
        return "quick" if self.quick else "default"


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    *,
    quick_seeds: int = 3,
    default_seeds: int = 5,
) -> RunArgs:
    """``--quick`` (test size, well under a minute on 2 cores) vs the default size (≤ 20 min).

    Seeds are ``seed, seed+1, …, seed+n-1`` with ``n = --seeds`` (default depends on the size).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes used by the tests")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder (results/)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bars")
    ns = p.parse_args(argv)
    n = ns.seeds if ns.seeds is not None else (quick_seeds if ns.quick else default_seeds)
    if n < 1:
        p.error(f"--seeds must be >= 1, got {n}")
    return RunArgs(
        quick=ns.quick,
        seeds=[ns.seed + i for i in range(n)],
        out=ns.out,
        progress=not ns.no_progress,
    )


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, relative to the project root."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["uv", "run", "python", f"experiments/{script}", *args])


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Limit intra-op threads (the machines have 2 cores shared with other jobs)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n or min(old, int(os.environ.get("NL_EXP_THREADS", "1"))))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- training
def snapshot(model: nn.Module) -> dict[str, Tensor]:
    """A copy of the weights (tiny models: cheap enough to take every step)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    batch_loss: Callable[[], Tensor],
    *,
    steps: int,
    lr: float,
    weight_decay: float,
) -> tuple[list[float], bool]:
    """Train ``model`` for ``steps`` steps of AdamW with a one-cycle LR (10 % warm-up) and the
    gradient norm clipped at 1; ``batch_loss()`` draws the next batch and returns its loss.

    Returns the loss curve and whether training diverged. On the first non-finite loss training
    stops and the model goes back to the last weights whose loss was finite (early stopping at
    divergence).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    losses: list[float] = []
    last_good = snapshot(model)
    for _ in range(steps):
        loss = batch_loss()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):  # diverged: back to the last weights with a finite loss
            model.load_state_dict(last_good)
            return losses, True
        last_good = snapshot(model)
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return losses, False


# --------------------------------------------------------------------------- payload
def build_payload(
    *,
    name: str,
    title: str,
    claim: str,
    paper_ref: str,
    args: RunArgs,
    command: str,
    config: Mapping[str, Any],
    per_seed: PerSeed,
    checks: Sequence[Check],
    wall_time_s: float,
    load_average: Mapping[str, float] | None = None,
    controls: Sequence[Control] = (),
    memory_ablation: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Assemble a result: summary, controls and verdicts are computed here from ``per_seed``
    (:func:`ledger.judge`); ``memory_ablation``: the rows of :func:`memory_rows`."""
    return {
        **judge(checks, controls, per_seed),
        "experiment": name,
        "title": title,
        "claim": claim,
        "paper_ref": paper_ref,
        "config": dict(config),
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": summarize(per_seed),
        "memory_ablation": [dict(r) for r in memory_ablation],
        "command": command,
        "size": args.size,
        "wall_time_s": round(wall_time_s, 2),
        "load_average": dict(load_average or {}),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "plot": f"{name}.png",
        "notes": list(notes),
        "extra": dict(extra or {}),
    }


def validate_payload(payload: Mapping[str, Any]) -> None:
    """Raise ValueError if a result misses a key or has an inconsistent verdict."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"result is missing {missing}")
    if payload["size"] not in ("quick", "default"):
        raise ValueError(f"bad size: {payload['size']!r}")
    kind(payload["verdict"])
    n = len(payload["seeds"])
    for metric, methods in payload["per_seed"].items():
        for method, vals in methods.items():
            if len(vals) != n:
                raise ValueError(f"per_seed[{metric}][{method}] has {len(vals)} values, not {n}")
    validate_verdicts(payload)


# --------------------------------------------------------------------------- memory use
def ablated(model: str, setting: str) -> str:
    """The per-seed method name of ``model`` measured with ``setting`` (``MEMORY_SETTINGS``)."""
    return model if setting == "with_memory" else f"{model} ({setting.replace('_', ' ')})"


def record_memory_use(
    per_seed: PerSeed,
    name: str,
    model: nn.Module,
    metrics: Mapping[str, Callable[[nn.Module], float]],
) -> None:
    """Measure every metric of a trained ``model`` with its memories on and switched off at test
    time (:func:`nested_learning.memory_use.memory_ablation`) and record each value under
    ``ablated(name, setting)``; settings the model has no memory for are not recorded."""
    for metric, fn in metrics.items():
        for setting, value in memory_ablation(model, fn).items():
            if value is not None:
                record(per_seed, metric, ablated(name, setting), value)


def memory_rows(per_seed: PerSeed, models: Sequence[str], metric: str) -> list[dict[str, Any]]:
    """``memory_ablation`` rows: ``{model, metric, with_memory, titans_off, cms_off, all_off}``,
    each the mean over seeds, ``None`` where the model lacks that memory."""
    rows = []
    for m in models:
        row: dict[str, Any] = {"model": m, "metric": metric}
        for setting in MEMORY_SETTINGS:
            vals = per_seed.get(metric, {}).get(ablated(m, setting))
            row[setting] = statistics.fmean(vals) if vals else None
        rows.append(row)
    return rows


def record_gates(
    gates: dict[str, list[dict[str, float]]], name: str, model: nn.Module, run: Callable[..., Any]
) -> None:
    """Append the trained gate statistics of one seed (:func:`gate_statistics`) to ``gates``."""
    stats = gate_statistics(model, run)
    if stats:
        gates.setdefault(name, []).append(stats)


def mean_gates(gates: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Per model, each gate statistic averaged over the seeds."""
    return {
        m: {k: statistics.fmean(s[k] for s in seeds) for k in seeds[0]}
        for m, seeds in gates.items()
    }


def _finite(obj: Any) -> Any:
    """JSON has no inf/nan: write them as strings so the file stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_result(name: str, payload: Mapping[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """Validate and write ``<out_dir>/<name>.json`` (sorted keys, 2-space indent)."""
    validate_payload(payload)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    text = json.dumps(_finite(payload), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def save_figure(fig: Figure, out_dir: Path, name: str) -> Path:
    """Save ``<out_dir>/<name>.png`` (PNG, 110 dpi, no timestamp metadata) and close it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    fig.clf()
    return path


class Timer:
    """Wall-clock seconds since construction, and the machine's 1-minute load average then and
    now (wall times on a shared 2-core machine mean little without it)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.load_start = os.getloadavg()[0]

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def load(self) -> dict[str, float]:
        return {"start": round(self.load_start, 2), "end": round(os.getloadavg()[0], 2)}


def finish(
    name: str,
    fig: Figure,
    *,
    args: RunArgs,
    argv: Sequence[str] | None,
    timer: Timer,
    **fields: Any,
) -> int:
    """Save ``<name>.png``, then build, validate and write ``<name>.json`` into ``args.out``.

    ``fields`` are the experiment's own :func:`build_payload` arguments (title, claim, paper_ref,
    config, per_seed, checks, extra, notes); the command comes from ``experiments/<name>.py`` and
    ``argv``, the wall time from ``timer`` (read after the figure is saved). Prints the result's
    path and verdict and returns 0, the script's exit status.
    """
    save_figure(fig, args.out, name)
    payload = build_payload(
        name=name,
        args=args,
        command=command_line(f"{name}.py", argv),
        wall_time_s=timer.elapsed(),
        load_average=timer.load(),
        **fields,
    )
    path = write_result(name, payload, args.out)
    print(f"{path}: verdict {payload['verdict']}")
    return 0
