"""Tracing the main Titans memory ``M_mem`` of each layer: chunk snapshots, keys and targets."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from nested_learning.core.memory import FastWeights, memory_forward
from nested_learning.core.titans import SelfModifyingTitans


@dataclass
class ChunkRecord:
    """One chunk of one main-memory pass: the snapshot it read and learned from, and what it
    wrote (batch element 0): ``w1 [H, d, h]``, ``w2 [H, h, d]``, keys and targets ``[H, C, d]``."""

    start: int  # position of the chunk's first token in the traced sequence
    w1: Tensor
    w2: Tensor
    k: Tensor
    target: Tensor


@dataclass
class MemoryTrace:
    """Chunk records of every SelfModifyingTitans module of a model, in call order."""

    activation: list[str] = field(default_factory=list)
    chunks: list[list[ChunkRecord]] = field(default_factory=list)
    final: list[FastWeights | None] = field(default_factory=list)


def titans_modules(model: nn.Module) -> list[SelfModifyingTitans]:
    """The self-modifying Titans mixers of ``model`` (one per Hope layer), in layer order."""
    return [m for m in model.modules() if isinstance(m, SelfModifyingTitans)]


@contextlib.contextmanager
def trace_main_memory(model: nn.Module) -> Iterator[MemoryTrace]:
    """Record every chunk snapshot, key and target of each layer's main memory ``M_mem``.

    The model exposes no hook for this, so each mixer's main-memory pass is temporarily replaced
    (on the instance only) by a loop that hands the original pass one chunk at a time — exactly
    the loop the original runs, so outputs are unchanged — and records the chunk's snapshot,
    keys ``k_t`` and targets ``v̂_t = M_mem,ξ(v_t)`` (``v_t`` for a non-self-modifying mixer).
    """
    trace = MemoryTrace()
    patched = []
    for layer, mod in enumerate(titans_modules(model)):
        trace.activation.append(mod.config.activation)
        trace.chunks.append([])
        trace.final.append(None)
        original = mod._run_mem
        mod._run_mem = _recording_run_mem(mod, original, trace, layer)  # type: ignore[method-assign]
        patched.append(mod)
    try:
        yield trace
    finally:
        for mod in patched:
            del mod._run_mem  # back to the class method


def _recording_run_mem(
    mod: SelfModifyingTitans, original: Callable[..., Any], trace: MemoryTrace, layer: int
) -> Callable[..., tuple[Tensor, FastWeights]]:
    cfg = mod.config
    records = trace.chunks[layer]

    def run_mem(
        q: Tensor, k: Tensor, v: Tensor, eta: Tensor, alpha: Tensor, state: FastWeights
    ) -> tuple[Tensor, FastWeights]:
        outs = []
        offset = records[-1].start + records[-1].k.shape[1] if records else 0
        for s in range(0, q.shape[2], cfg.chunk_size_memory):
            sl = slice(s, s + cfg.chunk_size_memory)
            with torch.no_grad():
                target = (
                    memory_forward(state.w1, state.w2, v[:, :, sl], cfg.activation)
                    if cfg.self_modifying
                    else v[:, :, sl]
                )
            records.append(
                ChunkRecord(
                    offset + s,
                    state.w1[0].detach(),
                    state.w2[0].detach(),
                    k[0, :, sl].detach(),
                    target[0].detach(),
                )
            )
            out, state = original(q[:, :, sl], k[:, :, sl], v[:, :, sl], eta[:, :, sl],
                                  alpha[:, :, sl], state)  # fmt: skip
            outs.append(out)
        trace.final[layer] = state.map(lambda t: t[0].detach())
        return torch.cat(outs, dim=2), state

    return run_mem


def memory_error(w1: Tensor, w2: Tensor, k: Tensor, target: Tensor, activation: str) -> Tensor:
    """``||M(k_t) - target_t||²`` per head and token, ``[H, C]`` (the inner loss of Eq. 85/88)."""
    return (memory_forward(w1, w2, k, activation) - target).square().sum(-1)
