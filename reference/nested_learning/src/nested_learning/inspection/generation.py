"""The demo's model: loading a checkpoint (or an untrained model) and sampling a completion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from nested_learning.checkpoint import load_checkpoint
from nested_learning.models import create_model
from nested_learning.sampling import generate

TRAIN_COMMAND = "uv run python train.py --config small"


def load_model(checkpoint: Path | None) -> tuple[nn.Module, int, str]:
    """The model from ``checkpoint``, or an untrained one with a message saying how to train it."""
    if checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        model = create_model(**state["config"]["model"])
        model.load_state_dict(state["model"])
        status = f"Loaded {checkpoint.name} (step {state['step']})."
        context = int(state["config"]["model"].get("max_seq_len", 256))
    else:
        model, context = create_model(), 256
        status = (
            f"No checkpoint at {checkpoint}: showing an UNTRAINED model (its text is noise). "
            f"Train one with `{TRAIN_COMMAND}` (a few minutes on a CPU)."
        )
    return model.eval(), context, status


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread. The model does many small ops per segment; on a busy 2-core
    machine two spinning intra-op threads made a 256-token pass 10-80x slower than one."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class NonFiniteLogits(RuntimeError):
    """The model's next-token logits are NaN or infinite (a fast memory diverged)."""


class FiniteOnly(nn.Module):
    """Wraps a model for sampling: raises :class:`NonFiniteLogits` instead of sampling from NaN."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor) -> Tensor:
        logits: Tensor = self.model(tokens)
        if not torch.isfinite(logits[:, -1]).all():
            raise NonFiniteLogits(f"non-finite logits after {tokens.shape[1]} tokens")
        return logits


def complete_tokens(
    model: nn.Module,
    tokens: Tensor,
    max_new_tokens: int,
    context: int,
    temperature: float,
    seed: int,
) -> tuple[Tensor, str]:
    """Sample up to ``max_new_tokens`` with :func:`generate` (top-k 50), one token per call so
    that a non-finite step ends the completion instead of crashing it; returns ``[1, T + n]`` and
    a note ("" when all tokens were produced)."""
    generator = torch.Generator().manual_seed(seed)
    checked = FiniteOnly(model)
    for _ in range(max_new_tokens):  # same draws as one call: the generator carries on
        try:
            tokens = generate(checked, tokens, 1, context, temperature, 50, generator)
        except NonFiniteLogits as err:
            return tokens, f"Generation stopped early: {err}."
    return tokens, ""
