"""Paper-specific helpers of the small-scale experiments (arXiv 2512.24695, spec §12).

The experiment protocol itself — command line, progress, timing, result files, controls and
verdicts — is the template's (``experiments/runner.py`` and ``experiments/ledger.py``, updated by
``copier update``); ``experiments/report.py`` turns every ``results/*.json`` into
``results/README.md``, with the memory-use tables of ``experiments/report_extras.py``. Here:

* :func:`torch_threads` and :func:`fit`: how the neural experiments (2-4) train on a shared
  2-core CPU (AdamW, one-cycle LR, clipping, early stop at divergence);
* the memory-use measurements every trained HOPE or Titans gets: the metric with its in-context
  memories switched off at test time (:func:`record_memory_use`, :func:`memory_rows`) and its
  trained gates (:func:`record_gates`, :func:`mean_gates`).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from ledger import PerSeed, record
from torch import Tensor, nn

from nested_learning.memory_use import MEMORY_SETTINGS, gate_statistics, memory_ablation


# --------------------------------------------------------------------------- training
@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Limit intra-op threads (the machines have 2 cores shared with other jobs)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n or min(old, int(os.environ.get("NL_EXP_THREADS", "1"))))
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


#: Per model, one :func:`gate_statistics` dict a seed (``None``: no finite token to measure).
Gates = dict[str, list[dict[str, float | None]]]


def record_gates(
    gates: Gates,
    name: str,
    model: nn.Module,
    run: Callable[..., Any],
) -> None:
    """Append the trained gate statistics of one seed (:func:`gate_statistics`) to ``gates``."""
    stats = gate_statistics(model, run)
    if stats:
        gates.setdefault(name, []).append(stats)


#: How each gate statistic combines over seeds (or runs): a max stays a max, a bound the largest.
_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "eta_mean": statistics.fmean,
    "eta_max": max,
    "eta_bound": max,
    "alpha_mean": statistics.fmean,
    "nonfinite": statistics.fmean,
}


def mean_gates(
    gates: Mapping[str, Sequence[Mapping[str, float | None]]],
) -> dict[str, dict[str, float | None]]:
    """Per model, the gate statistics over its seeds: means averaged, ``eta_max`` and
    ``eta_bound`` the largest; a seed with no finite token (``None``) is left out of the means,
    and a statistic no seed has stays ``None``."""
    out: dict[str, dict[str, float | None]] = {}
    for m, seeds in gates.items():
        row: dict[str, float | None] = {}
        for key, reduce in _REDUCE.items():
            vals = [v for s in seeds if (v := s.get(key)) is not None]
            row[key] = reduce(vals) if vals else None
        out[m] = row
    return out
