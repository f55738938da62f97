"""CPU threading defaults: OpenMP wait policy and thread count, quiet and beside a busy process.

    uv run python benchmarks/cpu_threads.py      # writes benchmarks/results/cpu_threads.{json,md}

PyTorch's CPU ops run on OpenMP threads that, by default, spin while they wait for each other
(``OMP_WAIT_POLICY`` unset: GNU libgomp spins for a while before it sleeps). On a 2-core machine
shared with one other busy process the OS deschedules one of the two threads, and every parallel
region then waits for its time slice. Each setting runs in a fresh process (libgomp reads its
environment when torch loads it, so nothing can change it inside one process):

- ``default``: 2 threads, nothing set;
- ``passive``: 2 threads, ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep at once);
- ``spin 1k`` / ``spin 30k``: 2 threads, ``GOMP_SPINCOUNT`` cut from libgomp's 300000;
- ``1 thread``.

Each trains the small presets (Transformer++ and HOPE, the configs' own batch and length) for a
few steps after one warm-up step, on a quiet machine ("quiet") and beside one
``while True: pass`` process ("busy"). Settings and situations alternate within one run; the
report gives each setting's median step time and its ratio to ``default`` in the same situation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PRESETS = {"transformer": "small_transformer", "hope": "small"}
#: name -> (environment overrides, torch threads)
SETTINGS: dict[str, tuple[dict[str, str], int]] = {
    "default": ({}, 2),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    "spin 1k": ({"GOMP_SPINCOUNT": "1000"}, 2),
    "spin 30k": ({"GOMP_SPINCOUNT": "30000"}, 2),
    "1 thread": ({}, 1),
}
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
BUSY = "while True: pass"


def worker(arch: str, steps: int, threads: int) -> dict[str, Any]:
    """Median seconds per training step of ``arch``'s small preset (runs in its own process)."""
    import torch
    import torch.nn.functional as F

    from nested_learning.config import load_config
    from nested_learning.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = load_config(PRESETS[arch])
    model = create_model(**cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, 256, (cfg.train.batch_size, cfg.train.seq_len + 1))

    def step() -> float:
        start = time.perf_counter()
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        return time.perf_counter() - start

    step()  # warm-up
    times = [step() for _ in range(steps)]
    return {"step_s": statistics.median(times), "threads": torch.get_num_threads()}


def run_worker(arch: str, steps: int, setting: str) -> float:
    """One fresh process for (``arch``, ``setting``); returns its median step time."""
    overrides, threads = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS} | overrides
    cmd = [sys.executable, __file__, "--worker", arch, str(steps), str(threads)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["step_s"])


def measure(archs: list[str], steps: int, repeats: int) -> dict[str, Any]:
    """Alternate situations and settings ``repeats`` times; times per (situation, arch, setting)."""
    raw: dict[str, dict[str, dict[str, list[float]]]] = {}
    for _ in range(repeats):
        for situation in ("quiet", "busy"):
            hog = subprocess.Popen([sys.executable, "-c", BUSY]) if situation == "busy" else None
            try:
                for arch in archs:
                    for setting in SETTINGS:
                        t = run_worker(arch, steps, setting)
                        raw.setdefault(situation, {}).setdefault(arch, {}).setdefault(setting, [])
                        raw[situation][arch][setting].append(t)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
    return raw


def summarise(raw: dict[str, dict[str, dict[str, list[float]]]]) -> list[dict[str, Any]]:
    rows = []
    for situation, per_arch in raw.items():
        for arch, per_setting in per_arch.items():
            base = statistics.median(per_setting["default"])
            for setting, times in per_setting.items():
                med = statistics.median(times)
                rows.append(
                    {"situation": situation, "arch": arch, "setting": setting,
                     "step_s": round(med, 4), "vs_default": round(med / base, 3),
                     "runs": [round(t, 4) for t in times]}
                )  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# CPU threading defaults (generated by benchmarks/cpu_threads.py; do not edit)",
        "",
        f"Load average before / after: {meta['load_before']} / {meta['load_after']}; "
        f"{meta['repeats']} alternating repeats of {meta['steps']} timed steps.",
        "",
        "| situation | model | setting | median step (s) | vs default |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['situation']} | {r['arch']} | {r['setting']} | {r['step_s']:.3f} | "
            f"{r['vs_default']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats")
    parser.add_argument("--arch", action="append", choices=sorted(PRESETS), help="default: both")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        arch, steps, threads = args.worker
        print(json.dumps(worker(arch, int(steps), int(threads))))
        return 0
    if (os.cpu_count() or 1) < 2:
        sys.exit("cpu_threads.py compares 1 and 2 threads: it needs at least 2 CPU cores")
    before = [round(x, 2) for x in os.getloadavg()]
    raw = measure(args.arch or list(PRESETS), args.steps, args.repeats)
    meta = {
        "load_before": before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "steps": args.steps,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    rows = summarise(raw)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu_threads.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    (args.out / "cpu_threads.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
