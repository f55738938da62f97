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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # headless: experiments run on CI and in subprocesses

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "results"

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive")
PerSeed = dict[str, dict[str, list[float]]]  # metric -> method -> one value per seed

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


# --------------------------------------------------------------------------- statistics
def record(per_seed: PerSeed, metric: str, method: str, value: float) -> None:
    """Append one seed's ``value`` to ``per_seed[metric][method]`` (created on first use)."""
    per_seed.setdefault(metric, {}).setdefault(method, []).append(value)


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean, std (sample, 0 for one value), min, max and n of per-seed values."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("describe needs at least one value")
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {
        "mean": statistics.fmean(vals),
        "std": std,
        "min": min(vals),
        "max": max(vals),
        "n": float(len(vals)),
    }


def summarize(per_seed: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """Same nesting as ``per_seed`` with each list replaced by :func:`describe`."""
    return {m: {k: describe(v) for k, v in methods.items()} for m, methods in per_seed.items()}


# --------------------------------------------------------------------------- verdict rule
@dataclass(frozen=True)
class Check:
    """One comparison that supports (or not) a claim of the paper.

    ``candidate`` is the method the paper says is better; ``baseline`` is another method of the
    same metric, or a number (a threshold: "the candidate stays below/above this value").

    Attributes:
        name: short id.
        claim: the sentence this check tests.
        metric: key of ``per_seed``.
        candidate: method expected to be better.
        baseline: method name, or a fixed threshold.
        higher_is_better: direction of the metric.
        margin: minimum mean improvement for "reproduced".
        relative: improvements divided by ``|baseline|`` per seed (ignored for thresholds).
        primary: counts towards the experiment's overall verdict.
        part: which claim of a multi-claim experiment this check belongs to ("" = the only one).
    """

    name: str
    claim: str
    metric: str
    candidate: str
    baseline: str | float
    higher_is_better: bool = False
    margin: float = 0.1
    relative: bool = True
    primary: bool = True
    part: str = ""

    def rule(self) -> str:
        """The verdict rule in words, generated from the fields."""
        versus = (
            f"the threshold {self.baseline:g}"
            if not isinstance(self.baseline, str)
            else f"'{self.baseline}'"
        )
        kind = "relative " if self.relative and isinstance(self.baseline, str) else ""
        better = "higher" if self.higher_is_better else "lower"
        return (
            f"{self.metric} ({better} is better): improvement of '{self.candidate}' over {versus}"
            f" per seed; reproduced iff the mean {kind}improvement ≥ {self.margin:g} and every"
            " seed improves; not reproduced iff the mean improvement ≤ 0; else inconclusive"
        )


def improvements(
    check: Check, per_seed: Mapping[str, Mapping[str, Sequence[float]]]
) -> list[float]:
    """Per-seed improvement of the candidate over the baseline (> 0 = the claim's direction)."""
    cand = [float(v) for v in per_seed[check.metric][check.candidate]]
    if not isinstance(check.baseline, str):
        base = [check.baseline] * len(cand)
    else:
        base = [float(v) for v in per_seed[check.metric][check.baseline]]
        if len(base) != len(cand):
            raise ValueError(f"{check.name}: {len(cand)} candidate vs {len(base)} baseline seeds")
    sign = 1.0 if check.higher_is_better else -1.0
    out = []
    for c, b in zip(cand, base, strict=True):
        d = sign * (c - b)
        if check.relative and isinstance(check.baseline, str):
            d /= max(abs(b), 1e-12)
        out.append(d)
    return out


def verdict_from_improvements(imps: Sequence[float], margin: float) -> Verdict:
    """The rule: reproduced iff mean ≥ margin and all > 0; not reproduced iff mean ≤ 0.

    Non-finite improvements (a diverged run on both sides) carry no evidence → inconclusive.
    """
    if not imps or not all(isinstance(x, int | float) and math.isfinite(x) for x in imps):
        return "inconclusive"
    mean = statistics.fmean(imps)
    if mean >= margin and all(x > 0 for x in imps):
        return "reproduced"
    if mean <= 0:
        return "not reproduced"
    return "inconclusive"


def overall_verdict(verdicts: Iterable[str]) -> Verdict:
    """Primary checks combined: all reproduced → reproduced; all not → not; mixed → inconclusive."""
    vs = list(verdicts)
    if not vs:
        return "inconclusive"
    if all(v == "reproduced" for v in vs):
        return "reproduced"
    if all(v == "not reproduced" for v in vs):
        return "not reproduced"
    return "inconclusive"


def part_verdicts(evaluated: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Overall verdict of each named part (claim) from its own primary checks."""
    parts = sorted({str(e["part"]) for e in evaluated if e["part"]})
    return {
        p: overall_verdict(e["verdict"] for e in evaluated if e["part"] == p and e["primary"])
        for p in parts
    }


OVERALL_RULE = (
    "primary checks combined: all reproduced → reproduced; all not reproduced → not reproduced;"
    " otherwise inconclusive"
)


def evaluate_check(
    check: Check, per_seed: Mapping[str, Mapping[str, Sequence[float]]]
) -> dict[str, Any]:
    """The check's fields, its rule in words, per-seed improvements and the computed verdict."""
    imps = improvements(check, per_seed)
    finite = [x for x in imps if math.isfinite(x)]
    return {
        **asdict(check),
        "rule": check.rule(),
        "improvements": imps,
        "mean_improvement": statistics.fmean(finite) if finite else float("nan"),
        "verdict": verdict_from_improvements(imps, check.margin),
    }


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
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Assemble a result: summary and verdicts are computed here from ``per_seed``."""
    evaluated = [evaluate_check(c, per_seed) for c in checks]
    primary = [e["verdict"] for e in evaluated if e["primary"]]
    return {
        "part_verdicts": part_verdicts(evaluated),
        "experiment": name,
        "title": title,
        "claim": claim,
        "paper_ref": paper_ref,
        "config": dict(config),
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": summarize(per_seed),
        "checks": evaluated,
        "verdict": overall_verdict(primary),
        "verdict_rule": OVERALL_RULE,
        "command": command,
        "size": args.size,
        "wall_time_s": round(wall_time_s, 2),
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
    if payload["verdict"] not in VERDICTS or payload["size"] not in ("quick", "default"):
        raise ValueError(f"bad verdict/size: {payload['verdict']!r}, {payload['size']!r}")
    n = len(payload["seeds"])
    for metric, methods in payload["per_seed"].items():
        for method, vals in methods.items():
            if len(vals) != n:
                raise ValueError(f"per_seed[{metric}][{method}] has {len(vals)} values, not {n}")
    for c in payload["checks"]:
        if c["verdict"] != verdict_from_improvements(c["improvements"], c["margin"]):
            raise ValueError(f"check {c['name']}: verdict does not follow from its numbers")
    primary = [c["verdict"] for c in payload["checks"] if c["primary"]]
    if payload["verdict"] != overall_verdict(primary):
        raise ValueError("overall verdict does not follow from the primary checks")
    if payload.get("part_verdicts", {}) != part_verdicts(payload["checks"]):
        raise ValueError("part verdicts do not follow from the checks")


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
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


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
        **fields,
    )
    path = write_result(name, payload, args.out)
    print(f"{path}: verdict {payload['verdict']}")
    return 0
