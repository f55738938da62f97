"""The formal-language task of exp2 (Table 5): label logits, the training loss and exact-string
recognition per length, and the figure (Bhattamishra et al. 2020; Irie et al. 2023).

After BOS and after every symbol the model predicts, as independent binary labels, which symbols -
and end-of-string - may follow (:func:`nested_learning.synthetic.formal_language_batch`); the
label logits are the LM logits of those tokens. A string is recognised iff every label at every
position is right (sigmoid > 0.5).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from ledger import PerSeed
from matplotlib.figure import Figure
from torch import Tensor, nn

from nested_learning.synthetic import (
    FORMAL_LANGUAGES,
    FormalBatch,
    formal_language_batch,
    formal_spec,
)

#: arXiv Table 5, accuracy % (Bin0, Bin1) per language in FORMAL_LANGUAGES order.
PAPER_TABLE5: dict[str, list[list[float]]] = {
    "LSTM": [[100, 100]] * 6,
    "Transformer": [[46.4, 0.0], [0, 0], [0, 0], [100, 100], [100, 100], [100, 100]],
    "Linear": [[78.1, 0.0], [0, 0], [0, 0], [100, 100], [100, 100], [100, 100]],
    "DeltaNet": [[98.2, 10.1], [0, 0], [0, 0], [100, 100], [100, 100], [100, 100]],
    "SRWM": [[100, 100]] * 6,
    "Hope": [[100, 100]] * 6,
}


def label_logits(model: nn.Module, inputs: Tensor, token_ids: list[int]) -> Tensor:
    """``[B, T, num_labels]``: the LM logits of the symbol tokens and of EOS."""
    logits: Tensor = model(inputs)
    return logits[..., token_ids]


def masked_bce(model: nn.Module, batch: FormalBatch, token_ids: list[int]) -> Tensor:
    """Binary cross-entropy of the next-symbol sets, averaged over the string positions."""
    per = F.binary_cross_entropy_with_logits(
        label_logits(model, batch.inputs, token_ids), batch.labels, reduction="none"
    ).mean(-1)
    return (per * batch.mask).sum() / batch.mask.sum()


@torch.no_grad()  # not inference_mode: Hope's CMS takes gradients while it reads
def recognised(
    model: nn.Module, language: str, lo: int, hi: int, n: int, seed: int, batch: int = 50
) -> dict[int, list[bool]]:
    """Per string length in ``[lo, hi]``: whether each of ``n`` fresh strings is predicted
    exactly (every label at every position)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    ids = formal_spec(language).label_token_ids
    out: dict[int, list[bool]] = {}
    for start in range(0, n, batch):
        b = formal_language_batch(language, min(batch, n - start), lo, hi, g)
        pred = label_logits(model, b.inputs, ids) > 0
        ok = ((pred == (b.labels > 0.5)).all(-1) | ~b.mask).all(-1)
        for length, good in zip(b.lengths.tolist(), ok.tolist(), strict=True):
            out.setdefault(int(length), []).append(bool(good))
    model.train()
    return out


def accuracy(per_length: dict[int, list[bool]]) -> float:
    flat = [x for xs in per_length.values() for x in xs]
    return sum(flat) / len(flat)


def plot(
    per_seed: PerSeed,
    per_length: dict[str, dict[str, float]],
    models: Sequence[str],
    regular: Sequence[str],
) -> Figure:
    """Top: Bin0 / Bin1 accuracy per language and model (mean over seeds, min-max bars);
    bottom: accuracy per string length on the three regular languages."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    x = np.arange(len(FORMAL_LANGUAGES))
    width = 0.8 / len(models)
    for ax, b in zip(axes[0][:2], ("bin0", "bin1"), strict=True):
        for i, m in enumerate(models):
            vals = [  # a diverged run (NaN) is drawn as 0
                [0.0 if math.isnan(a) else a for a in per_seed[f"{b} {lang}"][m]]
                for lang in FORMAL_LANGUAGES
            ]
            mean = np.array([statistics.fmean(v) for v in vals]) * 100
            lo = mean - np.array([min(v) for v in vals]) * 100
            hi = np.array([max(v) for v in vals]) * 100 - mean
            off = (i - (len(models) - 1) / 2) * width
            ax.bar(x + off, mean, width, yerr=[lo, hi], label=m, capsize=2)
        paper = [PAPER_TABLE5["Hope"][j][b == "bin1"] for j in range(6)]
        ax.scatter(x, paper, marker="_", s=300, c="k", label="paper Hope", zorder=3)
        ax.set_xticks(x, [formal_spec(lang).table5 for lang in FORMAL_LANGUAGES])
        ax.set_title(f"{b.capitalize()} ({'train' if b == 'bin0' else 'longer'})")
        ax.set_ylabel("strings recognised (%)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][1].legend(fontsize=7)
    axes[0][2].axis("off")
    for ax, lang in zip(axes[1], regular, strict=True):
        for m in models:
            curve = per_length.get(f"{m} {lang}", {})
            ax.plot([int(n) for n in curve], [100 * a for a in curve.values()], ".-", label=m)
        ax.set_title(f"{formal_spec(lang).table5}: accuracy per length")
        ax.set_xlabel("string length")
        ax.grid(alpha=0.3)
    fig.suptitle("Formal languages (arXiv Table 5 setting, tiny CPU models)")
    fig.tight_layout()
    return fig
