"""Evaluate a checkpoint written by train.py.

    uv run python evaluate.py --checkpoint runs/small/checkpoint.pt
    uv run python evaluate.py --checkpoint runs/small/checkpoint.pt --tasks lm,mqar,parity \\
        --data corpus.txt --out runs/small/eval.json

Tasks:

* ``lm``: next-byte cross-entropy (nats) and bits per character (= loss / ln 2) on fixed windows of
  the validation split of the corpus (the checkpoint's ``data.path`` unless ``--data`` is given).
* ``mqar``, ``parity``, ``passkey``: **zero-shot** probes of a model trained only on text, with
  the generators of :mod:`nested_learning.synthetic`. They are not the trained-on-task results of
  experiments 2-3 (``experiments/``); expect chance-level numbers from a small LM.

  - ``mqar``: teacher-forced arg-max accuracy at the queried keys (16 pairs, vocabulary 64, ids
    used as raw bytes); chance = 1/32.
  - ``parity``: two-choice likelihood: after ``"parity of 0110 is "`` is ``"even"`` or ``"odd"``
    more probable? Bit strings of length 4-16; chance = 0.5.
  - ``passkey``: per-digit teacher-forced accuracy of the 5-digit passkey hidden in filler text
    (the longest length the model accepts, up to 1024 bytes); chance = 0.1.

Prints a table and writes JSON (``--out``). Bad input (missing checkpoint or data file, unknown
task) prints one message on stderr and exits with status 2 without writing anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

# PyTorch's OpenMP threads spin 300000 times before they sleep: beside one other busy process that
# made a training step 3-20x slower; 1000 spins cost 1.0-1.8x on a quiet machine, depending on
# the machine (the reference's benchmarks/cpu_threads.py). The smaller worst case wins.
# Set before torch loads libgomp; your own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nested_learning.checkpoint import load_checkpoint
from nested_learning.config import ConfigError
from nested_learning.data import TextDataset, encode, load_text
from nested_learning.models import count_parameters, create_model
from nested_learning.synthetic import mqar_batch, passkey_batch

TASKS = ("lm", "mqar", "parity", "passkey")
ZERO_SHOT = TASKS[1:]


class InputError(Exception):
    """Bad command-line input; the message says what to change."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by train.py")
    p.add_argument("--tasks", default="lm,mqar,parity", help=f"comma-separated, from {TASKS}")
    p.add_argument("--data", help="UTF-8 text file for 'lm' (default: the checkpoint's data)")
    p.add_argument("--out", help="write the results as JSON to this file")
    p.add_argument("--batches", type=int, default=8, help="evaluation batches per task")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation data")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return p.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> list[str]:
    """Validate before any work; returns the task list.

    Raises:
        InputError: unknown task, missing file, non-positive sizes.
    """
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise InputError(f"unknown task {unknown[0] if unknown else '(none)'!r}; valid: {TASKS}")
    if not Path(args.checkpoint).is_file():
        raise InputError(f"no checkpoint at {args.checkpoint}; train first (train.py --out-dir)")
    if args.data is not None and not Path(args.data).is_file():
        raise InputError(f"data file not found: {args.data}; pass a UTF-8 text file")
    if args.batches <= 0 or args.batch_size <= 0:
        raise InputError("--batches and --batch-size must be > 0")
    return list(dict.fromkeys(tasks))


def load_model(state: dict[str, Any], device: torch.device) -> nn.Module:
    """Rebuild the model from ``state["config"]["model"]`` and load ``state["model"]``."""
    model = create_model(**state["config"]["model"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def max_len(state: dict[str, Any]) -> int:
    return int(state["config"]["model"].get("max_seq_len", 256))


@torch.no_grad()  # not inference_mode: Hope's CMS takes gradients while it reads
def eval_lm(
    model: nn.Module, text: str, cfg: dict[str, Any], args: argparse.Namespace, dev: torch.device
) -> dict[str, float]:
    """Mean validation cross-entropy (nats/byte) and bits per character on fixed windows."""
    data = TextDataset(text, float(cfg.get("data", {}).get("val_fraction", 0.1)))
    seq_len = min(int(cfg.get("train", {}).get("seq_len", 128)), int(cfg["model"]["max_seq_len"]))
    seq_len = min(seq_len, len(data.splits["val"]) - 2)
    g = torch.Generator().manual_seed(args.seed)
    total = 0.0
    for _ in range(args.batches):
        x, y = data.get_batch("val", args.batch_size, seq_len, g, dev)
        total += F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten()).item()
    loss = total / args.batches
    tokens = float(args.batches * args.batch_size * seq_len)
    return {"val_loss": loss, "val_bpc": loss / math.log(2.0), "tokens": tokens}


@torch.no_grad()
def eval_mqar(
    model: nn.Module, state: dict[str, Any], args: argparse.Namespace, dev: torch.device
) -> dict[str, float]:
    """Zero-shot MQAR: arg-max accuracy at the queried keys."""
    g = torch.Generator().manual_seed(args.seed)
    seq_len = min(64, max_len(state))
    pairs = min(16, seq_len // 4)
    hits = total = 0
    for _ in range(args.batches):
        b = mqar_batch(args.batch_size, pairs, g, vocab_size=64, seq_len=seq_len)
        pred = model(b.inputs.to(dev)).argmax(-1).cpu()
        hits += int((pred[b.mask] == b.targets[b.mask]).sum())
        total += int(b.mask.sum())
    return {"accuracy": hits / total, "chance": 1 / 32, "num_pairs": float(pairs)}


def _logprob(model: nn.Module, prompt: Tensor, answer: Tensor, dev: torch.device) -> float:
    """log p(answer | prompt) under the LM (bytes): position i predicts byte i + 1."""
    seq = torch.cat([prompt, answer]).to(dev)
    logp = F.log_softmax(model(seq[:-1].unsqueeze(0)).float(), -1)[0]
    idx = torch.arange(len(prompt) - 1, len(seq) - 1, device=dev)
    return float(logp[idx, seq[idx + 1]].sum())


@torch.no_grad()
def eval_parity(
    model: nn.Module, state: dict[str, Any], args: argparse.Namespace, dev: torch.device
) -> dict[str, float]:
    """Zero-shot parity as a two-choice likelihood comparison ("even" vs "odd")."""
    g = torch.Generator().manual_seed(args.seed)
    n = args.batches * args.batch_size
    correct = 0
    for _ in range(n):
        length = int(torch.randint(4, 17, (1,), generator=g))
        bits = "".join("01"[int(b)] for b in torch.randint(2, (length,), generator=g))
        prompt = encode(f"parity of {bits} is ")
        scores = {w: _logprob(model, prompt, encode(w), dev) for w in ("even", "odd")}
        truth = "even" if bits.count("1") % 2 == 0 else "odd"
        correct += int(max(scores, key=lambda w: scores[w]) == truth)
    return {"accuracy": correct / n, "chance": 0.5}


@torch.no_grad()
def eval_passkey(
    model: nn.Module, state: dict[str, Any], args: argparse.Namespace, dev: torch.device
) -> dict[str, float]:
    """Zero-shot passkey: per-digit teacher-forced accuracy of the hidden number."""
    g = torch.Generator().manual_seed(args.seed)
    seq_len = min(1024, max_len(state))
    if seq_len < 100:
        return {"accuracy": float("nan"), "chance": 0.1, "seq_len": float(seq_len)}
    hits = total = 0
    for _ in range(args.batches):
        b = passkey_batch(args.batch_size, seq_len, g)
        pred = model(b.inputs.to(dev)).argmax(-1).cpu()
        hits += int((pred[b.mask] == b.targets[b.mask]).sum())
        total += int(b.mask.sum())
    return {"accuracy": hits / total, "chance": 0.1, "seq_len": float(seq_len)}


def run(args: argparse.Namespace, tasks: list[str], state: dict[str, Any]) -> dict[str, Any]:
    dev = torch.device(args.device)
    model = load_model(state, dev)
    cfg = state["config"]
    out: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "step": int(state.get("step", -1)),
        "arch": cfg["model"].get("arch", "hope"),
        "parameters": count_parameters(model),
        "seed": args.seed,
        "tasks": tasks,
    }
    if "lm" in tasks:
        text = load_text(args.data if args.data is not None else cfg.get("data", {}).get("path"))
        out["lm"] = {"data": args.data or cfg.get("data", {}).get("path") or "default corpus"}
        out["lm"] |= eval_lm(model, text, cfg, args, dev)
    probes = {"mqar": eval_mqar, "parity": eval_parity, "passkey": eval_passkey}
    zero = {t: probes[t](model, state, args, dev) for t in tasks if t in ZERO_SHOT}
    if zero:
        out["zero_shot"] = {"note": "zero-shot probes of a text-trained LM (no task training)"}
        out["zero_shot"] |= zero
    return out


def table(result: dict[str, Any]) -> str:
    """Plain-text table of the numbers."""
    rows = [f"checkpoint {result['checkpoint']} (step {result['step']}, {result['arch']},"
            f" {result['parameters']:,} parameters)"]  # fmt: skip
    rows.append(f"{'task':<26}{'metric':<14}{'value':>10}")
    if "lm" in result:
        for key in ("val_loss", "val_bpc"):
            rows.append(f"{'lm (validation)':<26}{key:<14}{result['lm'][key]:>10.4f}")
    for task, vals in result.get("zero_shot", {}).items():
        if task != "note":
            name = f"{task} (zero-shot)"
            rows.append(f"{name:<26}{'accuracy':<14}{vals['accuracy']:>10.4f}")
            rows.append(f"{'':<26}{'chance':<14}{vals['chance']:>10.4f}")
    return "\n".join(rows)


def _finite(obj: Any) -> Any:
    """JSON has no NaN: a non-finite number (e.g. a skipped probe) is written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tasks = check_inputs(args)
        state = load_checkpoint(args.checkpoint)
        if "config" not in state or "model" not in state:
            raise InputError(f"{args.checkpoint} is not a train.py checkpoint (no config/model)")
        result = run(args, tasks, state)
    except (InputError, ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table(result))
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_finite(result), indent=2, sort_keys=True, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
