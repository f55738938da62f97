"""Experiment 3: multi-query associative recall (MQAR), Hope vs Titans vs Transformer.

Paper: arXiv 2512.24695 Tables 3-4 (spec §10.4): on in-context recall Hope beats Titans (e.g.
SWDE 65.9 vs 60.8, MAD ICR both 100, fuzzy ICR 52.1 vs 50.0) and the Transformer stays best on
the real-data recall tasks (SWDE 71.4). Those numbers come from 760M-1.3B models; here the
mechanism is tested on Zoology-style MQAR (:func:`nested_learning.synthetic.mqar_batch`, spec §12).

Setup: vocabulary 64 (31 keys, 32 values), N ∈ {2, 4, 8, 16} key-value pairs followed directly by
N queries (each queried key followed by its value), so a sequence has 4N ≤ 64 tokens. We do not
scatter the queries among filler tokens as Zoology does: long runs of one repeated token made an
earlier version of the self-modifying Titans mixer return NaN at initialisation (``seq_len=64``,
N = 4; no longer seen since the momentum and v-normalisation fixes of core/titans.py), and the
setup is kept so that results stay comparable.

One model per architecture and seed is trained on a mixture of all N (each batch draws N
uniformly), then evaluated per N on fresh sequences: accuracy = fraction of queried keys whose
value is the arg-max prediction.

Models: ``hope`` (self-modifying Titans, chunk 8, CMS levels 16/64), ``titans`` (Titans LMM,
chunk 8) and ``transformer`` (Transformer++), 2 layers, d_model 64; the baselines' ``d_ff`` is
chosen so every model has Hope's parameter count ±10 % (``matched_config``).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from common import Timer, finish, fit, parse_args, torch_threads
from ledger import Check, PerSeed, record
from matplotlib.figure import Figure
from torch import Tensor, nn
from tqdm import tqdm

from nested_learning.models import count_parameters, create_model, matched_config
from nested_learning.synthetic import mqar_batch

NAME = "exp3_mqar"
MODELS = ("hope", "titans", "transformer")


@dataclass(frozen=True)
class Setup:
    """Sizes of the task, the models and the training."""

    pairs: tuple[int, ...] = (2, 4, 8, 16)
    seq_len: int | None = None  # None: 4N tokens, no filler; else queries among filler
    vocab_size: int = 64
    steps: int = 500
    batch_size: int = 32
    lr: float = 3e-3
    eval_sequences: int = 256
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    chunk: int = 8
    cms_chunks: tuple[int, int] = (16, 64)


QUICK = Setup(pairs=(2, 4), steps=15, eval_sequences=32, d_model=32, d_ff=64)


def model_kwargs(s: Setup) -> dict[str, dict[str, Any]]:
    """Hope's kwargs and the baselines' at Hope's parameter count (±10 %)."""
    base: dict[str, Any] = {
        "vocab_size": s.vocab_size,
        "d_model": s.d_model,
        "n_layers": s.n_layers,
        "n_heads": s.n_heads,
        "max_seq_len": s.seq_len or 4 * max(s.pairs),
    }
    hope = {
        "arch": "hope",
        **base,
        "d_ff": s.d_ff,
        "titans_chunk_memory": s.chunk,
        "titans_chunk_other": s.chunk,
        "cms_chunk_sizes": s.cms_chunks,
    }
    target = count_parameters(create_model(**hope))
    return {
        "hope": hope,
        "titans": matched_config("titans", target, **base, chunk_size=s.chunk),
        "transformer": matched_config("transformer", target, **base),
    }


def train_model(kwargs: dict[str, Any], s: Setup, seed: int) -> tuple[nn.Module, list[float], bool]:
    """AdamW on the cross-entropy at the queried keys; N drawn per batch from ``s.pairs``.

    Returns the model, the loss curve and whether training diverged (:func:`common.fit`: on the
    first non-finite loss the model goes back to the last weights whose loss was finite).
    """
    torch.manual_seed(seed)
    model = create_model(**kwargs)
    g = torch.Generator().manual_seed(seed)
    pick = random.Random(seed)

    def batch_loss() -> Tensor:
        n = pick.choice(s.pairs)
        b = mqar_batch(s.batch_size, n, g, vocab_size=s.vocab_size, seq_len=s.seq_len)
        logits = model(b.inputs)
        return F.cross_entropy(logits[b.mask], b.targets[b.mask])

    losses, diverged = fit(model, batch_loss, steps=s.steps, lr=s.lr, weight_decay=0.0)
    return model, losses, diverged


@torch.no_grad()  # not inference_mode: Hope's CMS takes gradients while it reads
def recall_accuracy(model: nn.Module, s: Setup, num_pairs: int, seed: int) -> float:
    """Arg-max accuracy at the queried keys over ``s.eval_sequences`` fresh sequences."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    hits = total = 0
    for start in range(0, s.eval_sequences, 64):
        n_seq = min(64, s.eval_sequences - start)
        b = mqar_batch(n_seq, num_pairs, g, vocab_size=s.vocab_size, seq_len=s.seq_len)
        pred = model(b.inputs).argmax(-1)
        hits += int((pred[b.mask] == b.targets[b.mask]).sum())
        total += int(b.mask.sum())
    model.train()
    return hits / total


def run_all(s: Setup, seeds: Sequence[int], progress: bool) -> tuple[PerSeed, dict[str, Any]]:
    kwargs = model_kwargs(s)
    per_seed: PerSeed = {f"acc N={n}": {} for n in s.pairs}
    per_seed["acc mean"] = {}
    curves: dict[str, list[float]] = {}
    for seed, m in tqdm(
        [(seed, m) for seed in seeds for m in MODELS], desc=NAME, disable=not progress
    ):
        model, losses, diverged = train_model(kwargs[m], s, seed)
        accs = [recall_accuracy(model, s, n, 10_000 + seed) for n in s.pairs]
        record(per_seed, "diverged", m, float(diverged))
        for n, acc in zip(s.pairs, accs, strict=True):
            record(per_seed, f"acc N={n}", m, acc)
        record(per_seed, "acc mean", m, statistics.fmean(accs))
        curves[f"{m} seed {seed}"] = losses[:: max(1, s.steps // 50)]
    params = {m: count_parameters(create_model(**kw)) for m, kw in kwargs.items()}
    return per_seed, {"model_kwargs": kwargs, "parameters": params, "loss_curves": curves}


def checks(s: Setup) -> list[Check]:
    largest = f"acc N={max(s.pairs)}"
    return [
        Check(
            "hope_beats_titans_recall",
            "Hope recalls better than Titans (Tables 3-4: SWDE 65.9 vs 60.8, fuzzy ICR 52.1 vs"
            " 50.0)",
            "acc mean",
            "hope",
            "titans",
            higher_is_better=True,
            margin=0.05,
            relative=False,
        ),
        Check(
            "hope_beats_titans_most_pairs",
            "Hope's advantage holds at the largest number of key-value pairs",
            largest,
            "hope",
            "titans",
            higher_is_better=True,
            margin=0.05,
            relative=False,
            primary=False,
        ),
        Check(
            "transformer_beats_hope_recall",
            "Attention stays best at in-context recall (Table 3: Transformer 71.4 vs Hope 65.9"
            " on SWDE)",
            "acc mean",
            "transformer",
            "hope",
            higher_is_better=True,
            margin=0.05,
            relative=False,
            primary=False,
        ),
    ]


def plot(s: Setup, per_seed: PerSeed, params: dict[str, int]) -> Figure:
    """Accuracy vs number of key-value pairs (mean over seeds; band = min-max)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in MODELS:
        vals = [per_seed[f"acc N={n}"][m] for n in s.pairs]
        mean = [100 * statistics.fmean(v) for v in vals]
        lo = [100 * min(v) for v in vals]
        hi = [100 * max(v) for v in vals]
        ax.plot(s.pairs, mean, marker="o", label=f"{m} ({params[m] / 1e3:.0f}k params)")
        ax.fill_between(s.pairs, lo, hi, alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(s.pairs), [str(n) for n in s.pairs])
    ax.set_xlabel("key-value pairs N")
    ax.set_ylabel("recall accuracy (%)")
    ax.set_ylim(0, 100)
    length = f"seq {s.seq_len}" if s.seq_len else "4N tokens"
    ax.set_title(f"MQAR, {length}, vocab {s.vocab_size}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


NOTES = [
    "MQAR: N pairs, then N queries (each key followed by its value) right after them (no"
    " filler: see the module docstring); scored at the queried keys only; accuracy"
    " differences in the checks are absolute.",
    "A run whose training loss becomes non-finite stops there and is evaluated with the last"
    " weights whose loss was finite (early stopping at divergence); 'diverged' records it.",
    "One model per architecture and seed, trained on a mixture of N, evaluated per N on fresh"
    " sequences (evaluation seed = 10000 + seed).",
    "The paper reports real-data recall (Table 3) and MAD (Table 4) at 760M+ parameters; this is"
    " the tiny-scale mechanism test of spec §12, so only the direction is comparable.",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("MQAR, Tables 3-4 (exp 3)", argv, quick_seeds=1, default_seeds=2)
    s = QUICK if args.quick else Setup()
    timer = Timer()
    with torch_threads():
        per_seed, extra = run_all(s, args.seeds, args.progress)
    return finish(
        NAME,
        plot(s, per_seed, extra["parameters"]),
        args=args,
        argv=argv,
        timer=timer,
        title="Multi-query associative recall: Hope vs Titans vs Transformer at matched size",
        claim="Hope recalls in-context associations better than Titans (arXiv Table 3: SWDE 65.9"
        " vs 60.8, FDA 41.9 vs 37.6; Table 4 fuzzy ICR 52.1 vs 50.0), while the Transformer"
        " remains best on recall (SWDE 71.4).",
        paper_ref="arXiv 2512.24695 Tables 3-4 (spec §10.4); MQAR from Zoology (Arora et al.)",
        config={**asdict(s), "models": list(MODELS)},
        per_seed=per_seed,
        checks=checks(s),
        extra=extra,
        notes=NOTES,
    )


if __name__ == "__main__":
    raise SystemExit(main())
