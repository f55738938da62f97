"""GPU check: the medium HOPE preset and a Transformer++ of its size, trained a few steps on CUDA.

    uv run python benchmarks/gpu_check.py     # writes benchmarks/results/gpu_check.json

The project never needs a GPU; this script does. It checks what the CPU cannot: that the medium
preset (338M parameters) runs on CUDA under bf16 autocast, how fast (tokens/s), how much memory it
takes (peak allocated), and whether any loss is non-finite. Each model runs 2 warm-up steps, then
``--steps`` timed steps (forward, backward, AdamW) on random tokens. The Transformer++ gets HOPE's
parameter count (±10 %) via ``matched_config``. ``--device cpu --preset small`` runs the same
code on a CPU (the tests do, to keep the script working where no GPU is).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nested_learning.config import load_config
from nested_learning.device import autocast, autocast_dtype
from nested_learning.models import count_parameters, create_model, matched_config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
BASE_KEYS = ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len")


def models(preset: str, seq_len: int) -> dict[str, dict[str, Any]]:
    """``create_model`` kwargs: the preset's HOPE and a Transformer++ with its parameter count."""
    hope = {**load_config(preset).model, "max_seq_len": seq_len}
    with torch.device("meta"):  # counting parameters allocates nothing
        target = count_parameters(create_model(**hope))
        base = {k: hope[k] for k in BASE_KEYS}
        transformer = matched_config("transformer", target, **base)
    return {"hope": hope, "transformer": transformer}


def run(
    kwargs: dict[str, Any], device: torch.device, batch: int, seq_len: int, steps: int
) -> dict[str, Any]:
    """Train ``steps`` timed steps after 2 warm-up steps; tokens/s, peak memory, non-finite."""
    torch.manual_seed(0)
    model = create_model(**kwargs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = autocast_dtype(device)
    tokens = torch.randint(0, kwargs["vocab_size"], (batch, seq_len + 1), device=device)
    losses: list[float] = []

    def step() -> None:
        with autocast(device, dtype):
            logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())  # .item() synchronises: the timer sees finished steps

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "params": count_parameters(model),
        "dtype": str(dtype).removeprefix("torch."),
        "tokens_per_s": round(steps * batch * seq_len / elapsed, 1),
        "step_s": round(elapsed / steps, 4),
        "peak_memory_gib": None if peak is None else round(peak, 2),
        "nonfinite_losses": sum(not math.isfinite(x) for x in losses),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run)")
    p.add_argument("--preset", default="medium", help="HOPE preset (default medium)")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON file (default {OUT})")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check.py: no CUDA GPU here (torch.cuda.is_available() is False). Run it on a "
            "machine with one; `--device cpu --preset small` is a dry run of the same code.",
            file=sys.stderr,
        )
        return 2
    device = torch.device(args.device)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "preset": args.preset,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "torch": torch.__version__,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "models": {},
    }
    for name, kwargs in models(args.preset, args.seq_len).items():
        row = run(kwargs, device, args.batch, args.seq_len, args.steps)
        result["models"][name] = row
        print(name, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)  # a reader never sees half a file
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
