"""Running an experiment: the command line, progress bars, timing and the result file.

Every experiment script has the same shape (``experiments/exp_attention_recall.py`` is one)::

    args = parse_args("what it does", argv, quick_seeds=2, default_seeds=5)
    timer = Timer()
    per_seed: PerSeed = {}
    for seed in progress(args.seeds, args, "seeds"):
        record(per_seed, "accuracy", "candidate", run_one(seed))    # ledger.record
    return finish("exp_name", figure, args=args, argv=argv, timer=timer, title=..., claim=...,
                  paper_ref=..., config=..., per_seed=per_seed, checks=[...], controls=[...])

:func:`finish` saves ``results/<name>.png``, computes the verdicts from the per-seed numbers
(:func:`ledger.judge`), and writes ``results/<name>.json`` with the config, the per-seed numbers,
the controls, the verdicts, the wall time, the machine's load, the torch and Python versions and the
git commit. ``experiments/report.py`` turns every JSON into ``results/README.md``.
Nothing here is specific to one paper.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # headless: experiments run on CI and in subprocesses

import torch
from ledger import Check, Control, PerSeed, judge, kind, rebuild, summarize, validate_verdicts
from matplotlib.figure import Figure
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "results"
T = TypeVar("T")

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


# --------------------------------------------------------------------------- command line
@dataclass(frozen=True)
class RunArgs:
    """The command line every experiment shares."""

    quick: bool
    seeds: list[int]
    out: Path
    progress: bool

    @property
    def size(self) -> str:
        """``"quick"`` (the tests' size) or ``"default"``."""
        return "quick" if self.quick else "default"


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    *,
    quick_seeds: int = 3,
    default_seeds: int = 5,
) -> RunArgs:
    """``--quick`` (seconds, for the tests) or the default size; seeds ``seed … seed+n-1``.

    Bad values (``--seeds 0``) end the program with one message and exit status 2.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes used by the tests")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder (results/)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
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
    """The command that reproduces this run, from the project root."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["uv", "run", "python", f"experiments/{script}", *args])


def progress(items: Iterable[T], args: RunArgs, desc: str, **kw: Any) -> Iterator[T]:
    """``items`` with a tqdm bar on stderr (none with ``--no-progress``)."""
    yield from tqdm(items, desc=desc, disable=not args.progress, leave=False, **kw)


def git_commit(root: Path = ROOT) -> str:
    """``HEAD``'s commit, ``+dirty`` if tracked files under ``root`` other than ``results/``
    differ from it (the code; another experiment rewriting its results is no change to this
    one's code); ``"unknown"`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        code = ["--", ".", ":(exclude)results"]
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", *code], cwd=root, check=False)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.returncode else "")


class Timer:
    """Wall-clock seconds since construction, and the 1-minute load average then and now
    (a wall time on a shared machine means little without it); ``commit``: the code's commit
    at construction, when the run has imported its code (HEAD may move while it runs)."""

    def __init__(self) -> None:
        self.commit = git_commit()
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self.load_start = os.getloadavg()[0]

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start

    def cpu(self) -> float:
        """CPU seconds of this process since construction (what a busy machine does not
        inflate as much as the wall time)."""
        return time.process_time() - self.cpu_start

    def load(self) -> dict[str, float]:
        """``{"start": …, "end": …}``: the load average at construction and now."""
        return {"start": round(self.load_start, 2), "end": round(os.getloadavg()[0], 2)}


# --------------------------------------------------------------------------- the result
def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """An extra table for ``results/README.md`` (``finish(..., tables=[table(...)])``).

    Cells are numbers (formatted by the report), strings, or None (shown as ``n/a``).
    """
    body = [list(r) for r in rows]
    for r in body:
        if len(r) != len(columns):
            raise ValueError(f"table {title!r}: a row has {len(r)} cells, not {len(columns)}")
    return {"title": title, "columns": list(columns), "rows": body}


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
    cpu_time_s: float | None = None,
    load_average: Mapping[str, float] | None = None,
    controls: Sequence[Control] = (),
    tables: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    commit: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The result: summary, controls and verdicts are computed here from ``per_seed``.

    ``commit``: the code's git commit (default: read now, :func:`git_commit`).
    ``more``: the experiment's own top-level fields (JSON values), kept as they are.
    """
    payload = {
        **judge(checks, controls, per_seed),
        "experiment": name,
        "title": title,
        "claim": claim,
        "paper_ref": paper_ref,
        "config": dict(config),
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": summarize(per_seed),
        "tables": [dict(t) for t in tables],
        "command": command,
        "size": args.size,
        "wall_time_s": round(wall_time_s, 2),
        "cpu_time_s": None if cpu_time_s is None else round(cpu_time_s, 2),
        "load_average": dict(load_average or {}),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": git_commit() if commit is None else commit,
        "plot": f"{name}.png",
        "notes": list(notes),
        "extra": dict(extra or {}),
    }
    clash = sorted(set(more) & set(payload))
    if clash:
        raise ValueError(f"{name}: extra fields {clash} would overwrite the result's own")
    return {**payload, **more}


def validate_payload(payload: Mapping[str, Any]) -> None:
    """Raise ValueError if a result misses a key, has ragged per-seed numbers, or carries a
    verdict its numbers do not give (:func:`ledger.validate_verdicts`)."""
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
    """Save ``<out_dir>/<name>.png`` (110 dpi, no timestamp metadata) and clear the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    fig.clf()
    return path


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

    ``fields`` are :func:`build_payload`'s other arguments (title, claim, paper_ref, config,
    per_seed, checks, controls, tables, extra, notes, …); the command comes from
    ``experiments/<name>.py`` and ``argv``. Prints the result's path and verdict; returns 0.
    """
    save_figure(fig, args.out, name)
    payload = build_payload(
        name=name,
        args=args,
        command=command_line(f"{name}.py", argv),
        wall_time_s=timer.elapsed(),
        cpu_time_s=timer.cpu(),
        load_average=timer.load(),
        commit=timer.commit,
        **fields,
    )
    path = write_result(name, payload, args.out)
    print(f"{path}: verdict {payload['verdict']}")
    return 0


# --------------------------------------------------------------------------- re-judging
def rejudge(path: Path) -> str:
    """Re-apply the ledger's current rules to a stored result's per-seed numbers and rewrite
    it (after an update changed a rule: ``report.py`` refuses a result whose stored rules are not
    the rules applied). The numbers, the checks' and controls' fields, and everything else are
    kept; returns the new verdict."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    checks = [rebuild(Check, c) for c in payload["checks"]]
    controls = [rebuild(Control, c) for c in payload.get("controls", [])]
    payload.update(judge(checks, controls, payload["per_seed"]))
    write_result(path.stem, payload, path.parent)
    return str(payload["verdict"])


def main(argv: Sequence[str] | None = None) -> int:
    """``python experiments/runner.py --rejudge results/*.json``."""
    p = argparse.ArgumentParser(description="Re-apply the ledger's rules to stored results.")
    p.add_argument("--rejudge", nargs="+", type=Path, required=True, metavar="RESULT_JSON")
    ns = p.parse_args(argv)
    missing = [str(f) for f in ns.rejudge if not f.is_file()]
    if missing:
        p.error(f"no such result file: {', '.join(missing)}")
    for f in ns.rejudge:
        print(f"{f}: verdict {rejudge(f)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
