"""Experiment 3: multi-query associative recall (MQAR), Hope vs Titans vs Transformer.

Paper: arXiv 2512.24695 Tables 3-4 (spec §10.4): on in-context recall Hope beats Titans (e.g.
SWDE 65.9 vs 60.8, MAD ICR both 100, fuzzy ICR 52.1 vs 50.0) and the Transformer stays best on
the real-data recall tasks (SWDE 71.4). Those numbers come from 760M-1.3B models; here the
mechanism is tested on Zoology-style MQAR (:func:`nested_learning.synthetic.mqar_batch`, spec §12).

Setup: vocabulary 64 (31 keys, 32 values), N key-value pairs followed directly by N queries
(each queried key followed by its value), so a sequence has 4N tokens. One model per architecture
and seed is trained with a **curriculum over N** (the first third of the steps on N = 2, the
second on N ∈ {2, 4}, the last on N ∈ {2, 4, 8}: without it the Transformer stayed at chance
between the values in context after 1000-3000 steps) at AdamW lr 1e-3 (at 3e-3 the Transformer
control plateaued at 0.75 / 0.45 / 0.20 at N = 2 / 4 / 8), then evaluated per N ∈ {2, 4, 8, 16} on
fresh sequences: accuracy = fraction of queried keys whose value is the arg-max prediction. N = 16
is longer than any training sequence.

**Every query is read after its pair's write**: Hope's ``M_mem`` and the Titans baseline write
every 2 tokens, so the chunk holding pair i (positions 2i, 2i+1) is closed before the first query
(position 2N). (With chunk 8, at N = 2 the whole sequence was one chunk and no write was ever read.)
CMS levels 8 / 32 update on the sequence's own next-token loss, which includes the answers.
``eta_scale`` is the same for Hope and Titans.

Models: ``transformer`` (Transformer++, the positive control: attention is known to solve MQAR),
``static hope`` (Hope with every in-context update off, trained so: the negative control; its
window-4 conv cannot see a pair from a query), ``hope`` (self-modifying Titans + CMS) and
``titans`` (Titans LMM), 2 layers, d_model 64; the baselines' ``d_ff`` is chosen so every model
has Hope's parameter count ±10 % (``matched_config``).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from common import (
    Gates,
    fit,
    mean_gates,
    memory_rows,
    record_gates,
    record_memory_use,
    torch_threads,
)
from controls import static_hope_kwargs
from ledger import Check, Control, PerSeed, record
from matplotlib.figure import Figure
from runner import Timer, finish, parse_args
from torch import Tensor, nn
from tqdm import tqdm

from nested_learning.models import count_parameters, create_model, matched_config
from nested_learning.synthetic import mqar_batch

NAME = "exp3_mqar"
HOPE, TITANS, TRANSFORMER, STATIC = "hope", "titans", "transformer", "static hope"
MODELS = (TRANSFORMER, STATIC, HOPE, TITANS)
MEMORY_MODELS = (HOPE, TITANS)


@dataclass(frozen=True)
class Setup:
    """Sizes of the task, the models and the training."""

    pairs: tuple[int, ...] = (2, 4, 8, 16)  # evaluated
    curriculum: tuple[tuple[int, ...], ...] = ((2,), (2, 4), (2, 4, 8))  # trained, in stages
    vocab_size: int = 64
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3  # at 3e-3 the Transformer plateaued: 0.75 / 0.45 / 0.20 at N = 2 / 4 / 8
    eval_sequences: int = 256
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    chunk_memory: int = 2  # M_mem / Titans write period: every pair is written before a query
    chunk_other: int = 8
    cms_chunks: tuple[int, int] = (8, 32)
    eta_scale: float = 0.1  # the same for Hope and Titans


QUICK = Setup(pairs=(2, 4), curriculum=((2,), (2, 4)), steps=12, eval_sequences=32, d_model=32)


def model_kwargs(s: Setup) -> dict[str, dict[str, Any]]:
    """Hope's kwargs, its static twin, and the baselines' at Hope's parameter count (±10 %)."""
    base: dict[str, Any] = {
        "vocab_size": s.vocab_size,
        "d_model": s.d_model,
        "n_layers": s.n_layers,
        "n_heads": s.n_heads,
        "max_seq_len": 4 * max(s.pairs),
    }
    hope = {
        "arch": "hope",
        **base,
        "d_ff": s.d_ff,
        "titans_chunk_memory": s.chunk_memory,
        "titans_chunk_other": s.chunk_other,
        "cms_chunk_sizes": s.cms_chunks,
        "eta_scale": s.eta_scale,
    }
    target = count_parameters(create_model(**hope))
    return {
        TRANSFORMER: matched_config(TRANSFORMER, target, **base),
        STATIC: static_hope_kwargs(hope),
        HOPE: hope,
        TITANS: matched_config(
            TITANS, target, **base, chunk_size=s.chunk_memory, eta_scale=s.eta_scale
        ),
    }


def stage_pairs(s: Setup, step: int) -> tuple[int, ...]:
    """The curriculum: the values of N drawn from at ``step`` (equal thirds of the steps)."""
    stage = min(len(s.curriculum) - 1, step * len(s.curriculum) // s.steps)
    return s.curriculum[stage]


def train_model(kwargs: dict[str, Any], s: Setup, seed: int) -> tuple[nn.Module, list[float], bool]:
    """AdamW on the cross-entropy at the queried keys; N drawn per batch from the curriculum.

    Returns the model, the loss curve and whether training diverged (:func:`common.fit`: on the
    first non-finite loss the model goes back to the last weights whose loss was finite).
    """
    torch.manual_seed(seed)
    model = create_model(**kwargs)
    g = torch.Generator().manual_seed(seed)
    pick = random.Random(seed)
    step = 0

    def batch_loss() -> Tensor:
        nonlocal step
        n = pick.choice(stage_pairs(s, step))
        step += 1
        b = mqar_batch(s.batch_size, n, g, vocab_size=s.vocab_size)
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
        b = mqar_batch(n_seq, num_pairs, g, vocab_size=s.vocab_size)
        pred = model(b.inputs).argmax(-1)
        hits += int((pred[b.mask] == b.targets[b.mask]).sum())
        total += int(b.mask.sum())
    model.train()
    return hits / total


def _recall(model: nn.Module, *, s: Setup, num_pairs: int, seed: int) -> float:
    return recall_accuracy(model, s, num_pairs, seed)


def metrics(s: Setup, seed: int) -> dict[str, Callable[[nn.Module], float]]:
    """``"acc N=<n>"`` for every evaluated N and ``"acc mean"`` over them."""
    out: dict[str, Callable[[nn.Module], float]] = {
        f"acc N={n}": partial(_recall, s=s, num_pairs=n, seed=10_000 + seed) for n in s.pairs
    }
    each = list(out.values())
    out["acc mean"] = lambda m: statistics.fmean(f(m) for f in each)
    return out


def run_all(s: Setup, seeds: Sequence[int], progress: bool) -> tuple[PerSeed, dict[str, Any]]:
    kwargs = model_kwargs(s)
    per_seed: PerSeed = {}
    curves: dict[str, list[float]] = {}
    gates: Gates = {}
    jobs = [(seed, m) for seed in seeds for m in MODELS]
    for seed, m in tqdm(jobs, desc=NAME, disable=not progress):
        model, losses, diverged = train_model(kwargs[m], s, seed)
        record(per_seed, "diverged", m, float(diverged))
        if m in MEMORY_MODELS:
            record_memory_use(per_seed, m, model, metrics(s, seed))
            probe = mqar_batch(64, max(s.pairs), torch.Generator(), vocab_size=s.vocab_size)
            record_gates(gates, m, model, lambda mod, x=probe.inputs: mod(x))
        else:
            for metric, fn in metrics(s, seed).items():
                record(per_seed, metric, m, fn(model))
        curves[f"{m} seed {seed}"] = losses[:: max(1, s.steps // 50)]
    params = {m: count_parameters(create_model(**kw)) for m, kw in kwargs.items()}
    return per_seed, {
        "model_kwargs": kwargs,
        "parameters": params,
        "loss_curves": curves,
        "gate_statistics": mean_gates(gates),
    }


def controls(s: Setup) -> list[Control]:
    """The Transformer must recall at every trained N; the static Hope must not."""
    trained = sorted(set().union(*s.curriculum))
    out = [
        Control(
            f"transformer_N{n}",
            "positive",
            f"acc N={n}",
            TRANSFORMER,
            0.9,
            why="attention recalls the pairs at the trained sizes: data, curriculum and budget"
            " allow a recall model to pass",
        )
        for n in trained
    ]
    out.append(
        Control(
            "static_hope_recall",
            "negative",
            f"acc N={trained[-1]}",
            STATIC,
            0.5,
            why="Hope with no in-context update sees a window of 4 tokens: it must not recall,"
            " or the task does not need memory",
        )
    )
    return out


def checks(s: Setup) -> list[Check]:
    largest = f"acc N={max(s.pairs)}"
    return [
        Check(
            "hope_beats_titans_recall",
            "Hope recalls better than Titans (Tables 3-4: SWDE 65.9 vs 60.8, fuzzy ICR 52.1 vs"
            " 50.0)",
            "acc mean",
            HOPE,
            TITANS,
            higher_is_better=True,
            margin=0.05,
            relative=False,
            attribution=("hope (all off)", STATIC),
        ),
        Check(
            "hope_beats_titans_most_pairs",
            "Hope's advantage holds at the largest number of key-value pairs",
            largest,
            HOPE,
            TITANS,
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
            TRANSFORMER,
            HOPE,
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
    ax.set_title(f"MQAR, 4N tokens, vocab {s.vocab_size} (trained N <= 8)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


NOTES = [
    "MQAR: N pairs, then N queries (each key followed by its value) right after them, no"
    " filler; scored at the queried keys only; accuracy differences in the checks are absolute.",
    "'hope (titans off)' / '(cms off)' / '(all off)': the trained Hope with those in-context"
    " updates switched off at test time; 'static hope' was trained with them off.",
    "A run whose training loss becomes non-finite stops there and is evaluated with the last"
    " weights whose loss was finite (early stopping at divergence); 'diverged' records it.",
    "One model per architecture and seed, trained with the curriculum over N (config), evaluated"
    " per N on fresh sequences (evaluation seed = 10000 + seed).",
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
        config={**asdict(s), "models": list(MODELS), "model_kwargs": extra["model_kwargs"]},
        per_seed=per_seed,
        checks=checks(s),
        controls=controls(s),
        memory_ablation=[
            row
            for n in (*s.pairs, "mean")
            for row in memory_rows(
                per_seed, MEMORY_MODELS, (f"acc N={n}" if n != "mean" else "acc mean")
            )
        ],
        extra=extra,
        notes=NOTES,
    )


if __name__ == "__main__":
    raise SystemExit(main())
