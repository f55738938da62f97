"""Control models of the experiments: models whose answer on a task is known in advance.

A *positive control* is known to solve the task as set up (an LSTM on the formal languages,
Bhattamishra et al. 2020; the Transformer on associative recall): if it fails, the setup — data,
labels, training budget or evaluation — is broken, and no verdict about HOPE can be read from
the run. A *negative control* lacks the mechanism under test (HOPE with every in-context update
switched off, trained that way; a model that sees no context at all): if it succeeds, the task
does not need the mechanism. ``common.Control`` turns their numbers into pass/fail.

The static HOPE is not defined here: it is ``create_model(arch="hope", titans_writes=False,
cms_inner_lr=0.0, ...)``, see :func:`static_hope_kwargs`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class LSTMLM(nn.Module):
    """Token embedding → ``n_layers`` LSTM → linear head: ``[B, T]`` ids → ``[B, T, vocab]``."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.lstm = nn.LSTM(d_model, d_model, n_layers, batch_first=True)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        h, _ = self.lstm(self.embed(tokens))
        out: Tensor = self.head(h)
        return out


class NoContextLM(nn.Module):
    """Each position sees only its own token (embedding → MLP → head): a bigram model, the
    negative control of language modelling (it cannot use any context)."""

    def __init__(self, vocab_size: int, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, vocab_size))

    def forward(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.mlp(self.embed(tokens))
        return out


def static_hope_kwargs(hope: dict[str, Any]) -> dict[str, Any]:
    """HOPE's ``create_model`` keyword arguments with every in-context update off: the Titans
    memories are never written and the CMS levels never step (a static network, trained so)."""
    return {**hope, "titans_writes": False, "cms_inner_lr": 0.0}
