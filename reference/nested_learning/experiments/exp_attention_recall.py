"""Example experiment: self-attention recalls a token from its context; a bag of tokens cannot.

The claim (Attention Is All You Need, Sec. 4 "Why Self-Attention"): a self-attention layer
connects every position to every other in one step, so a model built from it (with the positional
encoding of Sec. 3.5) can fetch any token of its context. The task is positional recall: ``n``
distinct symbols ``x1 … xn`` followed by a query token ``Pj`` (one of ``n`` position tokens); the
answer is ``xj``. A model that sees the context as an unordered bag knows which symbols are there
but not where: its accuracy is at most ``1/n``.

* candidate: the project's Transformer (``models/transformer.py``), trained on the task;
* positive control ``lookup``: the exact rule (read position ``j``) must score 1.0 — if not, the
  data, the labels or the scoring are broken;
* negative control ``bag``: a bag-of-tokens model (mean of the context embeddings + the query's
  embedding → MLP) must stay below 0.5 (its ceiling is ``1/n`` = 0.125) — if it does not, the
  task can be solved without positions and shows nothing about attention.

    uv run python experiments/exp_attention_recall.py            # default size, < 1 min on a CPU
    uv run python experiments/exp_attention_recall.py --quick    # seconds (the tests)

This file is yours: replace it with your paper's claims (copy its shape). The ledger
(``experiments/ledger.py``), the runner and the report are template-managed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from ledger import Check, Control, PerSeed, record
from matplotlib.figure import Figure
from runner import Timer, finish, parse_args, progress
from torch import Tensor, nn

from nested_learning.models.transformer import Transformer, TransformerConfig

NAME = "exp_attention_recall"
ATTENTION, BAG, LOOKUP = "self-attention", "bag of tokens", "lookup rule"


@dataclass(frozen=True)
class Size:
    """Task and training sizes."""

    length: int = 8  # context symbols, drawn without replacement from `symbols`
    symbols: int = 8  # ids 0…symbols-1; position tokens are symbols…symbols+length-1
    steps: int = 500
    batch: int = 64
    lr: float = 3e-3
    d_model: int = 64
    eval_sequences: int = 512


QUICK = Size(steps=60, batch=32, eval_sequences=128)


def make_batch(size: Size, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` sequences ``x1 … xL Pj`` (``[n, L+1]``) and their answers ``xj``."""
    if size.length > size.symbols:
        raise ValueError(f"length ({size.length}) must be <= symbols ({size.symbols})")
    context = torch.rand(n, size.symbols, generator=gen).argsort(dim=1)[:, : size.length]
    where = torch.randint(size.length, (n,), generator=gen)
    tokens = torch.cat([context, (size.symbols + where)[:, None]], dim=1)
    return tokens, context[torch.arange(n), where]


class BagOfTokens(nn.Module):
    """Mean of the context's token embeddings (order lost) + the query's embedding → MLP."""

    def __init__(self, vocab: int, d_model: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.mlp = nn.Sequential(nn.Linear(2 * d_model, 4 * d_model), nn.GELU())
        self.head = nn.Linear(4 * d_model, vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B, T]`` → answer logits ``[B, vocab]``."""
        e = self.embed(tokens)
        out: Tensor = self.head(self.mlp(torch.cat([e[:, :-1].mean(1), e[:, -1]], dim=-1)))
        return out


class AttentionRecall(nn.Module):
    """The project's Transformer; the answer is its prediction at the query position."""

    def __init__(self, vocab: int, size: Size) -> None:
        super().__init__()
        d = size.d_model
        config = TransformerConfig(
            vocab_size=vocab,
            d_model=d,
            n_layers=2,
            n_heads=4,
            d_ff=2 * d,
            max_seq_len=32,
        )
        self.model = Transformer(config)

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B, T]`` → answer logits ``[B, vocab]``."""
        out: Tensor = self.model(tokens)[:, -1]
        return out


def lookup(tokens: Tensor, symbols: int) -> Tensor:
    """The exact rule: the context token at the position the query names."""
    return tokens[torch.arange(len(tokens)), tokens[:, -1] - symbols]


def train(model: nn.Module, size: Size, gen: torch.Generator) -> None:
    """AdamW with a cosine learning rate, one fresh batch per step."""
    opt = torch.optim.AdamW(model.parameters(), lr=size.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, size.steps)
    for _ in range(size.steps):
        tokens, answer = make_batch(size, size.batch, gen)
        loss = F.cross_entropy(model(tokens), answer)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()


def answers_of(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """The model as a predictor: its most likely answer per sequence."""
    return lambda tokens: model(tokens).argmax(-1)


@torch.no_grad()
def accuracy(predict: Callable[[Tensor], Tensor], tokens: Tensor, answer: Tensor) -> float:
    """Fraction of sequences whose predicted answer is right."""
    return float((predict(tokens) == answer).float().mean())


def run_seed(size: Size, seed: int) -> dict[str, float]:
    """Train both models with ``seed`` and score them and the lookup rule on fresh sequences."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab = size.symbols + size.length
    models = {ATTENTION: AttentionRecall(vocab, size), BAG: BagOfTokens(vocab, size.d_model)}
    for model in models.values():
        train(model, size, gen)
    tokens, answer = make_batch(size, size.eval_sequences, gen)
    scores = {LOOKUP: accuracy(lambda t: lookup(t, size.symbols), tokens, answer)}
    for name, model in models.items():
        scores[name] = accuracy(answers_of(model), tokens, answer)
    return scores


def checks() -> list[Check]:
    """The claim's checks: attention beats the bag (primary) and recalls almost every query."""
    return [
        Check(
            "attention_beats_bag",
            "self-attention recalls the token at the queried position; a bag of tokens cannot",
            "accuracy",
            ATTENTION,
            BAG,
            higher_is_better=True,
            margin=0.3,
            relative=False,
        ),
        Check(
            "attention_recalls",
            "self-attention answers at least 90 % of the queries",
            "accuracy",
            ATTENTION,
            0.9,
            higher_is_better=True,
            margin=0.0,
            primary=False,
        ),
    ]


def controls(size: Size) -> list[Control]:
    """Positive: the lookup rule is exact. Negative: the bag stays below 0.5 (ceiling 1/n)."""
    return [
        Control("lookup", "positive", "accuracy", LOOKUP, 1.0, why="labels and scoring are right"),
        Control(
            "bag",
            "negative",
            "accuracy",
            BAG,
            0.5,
            why=f"order matters: a bag of tokens is capped at 1/{size.length}",
        ),
    ]


def plot(per_seed: PerSeed) -> Figure:
    """Accuracy per method: one dot per seed, a bar at the mean."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for i, values in enumerate(per_seed["accuracy"].values()):
        ax.bar(i, sum(values) / len(values), color="0.85")
        ax.scatter([i] * len(values), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(per_seed["accuracy"])), list(per_seed["accuracy"]))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("positional recall")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Run every seed, then write results/exp_attention_recall.{json,png}."""
    doc = __doc__.splitlines()[0] if __doc__ else NAME
    args = parse_args(doc, argv, quick_seeds=2, default_seeds=3)
    size = QUICK if args.quick else Size()
    timer = Timer()
    torch.set_num_threads(1)
    per_seed: PerSeed = {}
    for seed in progress(args.seeds, args, "seeds"):
        for method, value in run_seed(size, seed).items():
            record(per_seed, "accuracy", method, value)
    return finish(
        NAME,
        plot(per_seed),
        args=args,
        argv=argv,
        timer=timer,
        title="Positional recall: self-attention vs a bag of tokens",
        claim="Self-attention recalls a token from anywhere in its context, where a model that"
        " sees the context as an unordered bag of tokens cannot.",
        paper_ref="Attention Is All You Need, Sec. 4 and Sec. 3.5",
        config=asdict(size),
        per_seed=per_seed,
        checks=checks(),
        controls=controls(size),
    )


if __name__ == "__main__":
    raise SystemExit(main())
