"""One analysed text: surprise per token, CMS update positions and recall of the planted fact."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nested_learning.data import encode
from nested_learning.inspection.memory_trace import memory_error, titans_modules, trace_main_memory
from nested_learning.inspection.recall import Plant, probe_positions, probe_recall, retention_curve
from nested_learning.models import HopeBlock, HopeBlockState, HopeLM


@dataclass
class Analysis:
    """Everything the plots show (see the module docstring for the definitions)."""

    tokens: Tensor  # [T] the analysed text
    prompt_end: int  # tokens before the generated part
    ntp_loss: np.ndarray  # [T]: -log p(x_t | x_<t); NaN at t = 0
    inner_loss: np.ndarray | None  # [layers, T]: main-memory inner loss, mean over heads
    chunk_memory: int | None  # M_mem chunk size (write period)
    cms_chunks: list[int]  # C^(l) per level, fast → slow
    cms_updates: list[list[int]]  # per level: token counts after which its weights changed
    cms_update_size: list[list[float]]  # per level, per update: ||Δθ|| / ||θ0||
    plant: Plant | None
    plant_span: tuple[int, int] | None  # token range [a, b) of the fact (without the newline)
    probe_positions: list[int] = field(default_factory=list)
    probe_logp: list[float] = field(default_factory=list)  # mean log p per VALUE byte (nats)
    retention_positions: list[int] = field(default_factory=list)  # snapshot positions
    retention: np.ndarray | None = None  # [layers, snapshots]: error / error before the write
    first_nonfinite: int | None = None  # first position whose logits are not finite
    seconds: float = 0.0


def next_token_loss(logits: Tensor, tokens: Tensor) -> np.ndarray:
    """``-log p(x_t | x_<t)`` per token ``[T]`` (NaN at t = 0) from ``logits [T, V]``."""
    loss = F.cross_entropy(logits[:-1].float(), tokens[1:], reduction="none")
    return np.concatenate([[np.nan], loss.numpy()])


def cms_updates(
    model: HopeLM, states: list[list[HopeBlockState]]
) -> tuple[list[list[int]], list[list[float]]]:
    """When each CMS level changed and by how much, from the per-segment states of
    :meth:`HopeLM.forward_online` (``states[i]`` = every block's state after segment i)."""
    blocks = [blk for blk in model.blocks if isinstance(blk, HopeBlock)]
    with torch.no_grad():
        theta0 = [blk.cms.init_state(1).weights for blk in blocks]
    levels = len(model.config.cms_chunk_sizes)
    norm0 = [
        math.sqrt(sum(float(w.square().sum()) for ws in theta0 for w in ws[ell]))
        for ell in range(levels)
    ]
    positions: list[list[int]] = [[] for _ in range(levels)]
    sizes: list[list[float]] = [[] for _ in range(levels)]
    before = theta0
    for segment in states:
        after = [st.cms.weights for st in segment]
        seen = segment[0].cms.tokens_seen
        for ell in range(levels):
            pairs = [
                (w_a[0], w_b[0])
                for wa, wb in zip(after, before, strict=True)
                for w_a, w_b in zip(wa[ell], wb[ell], strict=True)
            ]
            # NaN == NaN here, so a diverged level does not "update" at every segment
            if any(not torch.equal(x.isnan(), y.isnan()) or not torch.allclose(
                x, y, rtol=0, atol=0, equal_nan=True) for x, y in pairs):  # fmt: skip
                change = sum(float((x - y).square().sum()) for x, y in pairs)
                positions[ell].append(seen)
                sizes[ell].append(math.sqrt(change) / norm0[ell])
        before = after
    return positions, sizes


def analyze_tokens(
    model: nn.Module, tokens: Tensor, prompt_end: int, plant: Plant | None, context: int
) -> Analysis:
    """Run the traced forward pass on ``tokens [T]`` and the recall probes (``plant`` is on the
    first line of the text)."""
    tick = time.perf_counter()
    x = tokens[None]
    states: list[list[HopeBlockState]] = []
    with torch.no_grad(), trace_main_memory(model) as trace:
        if isinstance(model, HopeLM):
            logits = model.forward_online(x, trace=states)[0][0]
        else:
            logits = model(x)[0]
    t = len(tokens)
    inner, chunk_memory = None, None
    if trace.chunks and all(trace.chunks):
        rows = []
        for layer, records in enumerate(trace.chunks):
            with torch.no_grad():
                errs = [
                    memory_error(r.w1, r.w2, r.k, r.target, trace.activation[layer]).mean(0)
                    for r in records
                ]
            rows.append(torch.cat(errs).numpy()[:t])
        inner = np.stack(rows)
        chunk_memory = titans_modules(model)[0].config.chunk_size_memory
    cms_chunks: list[int] = []
    positions: list[list[int]] = []
    sizes: list[list[float]] = []
    if isinstance(model, HopeLM):
        cms_chunks = [int(c) for c in model.config.cms_chunk_sizes]
        positions, sizes = cms_updates(model, states)
    span = None
    bad = (~torch.isfinite(logits).all(-1)).nonzero()
    out = Analysis(
        tokens, prompt_end, next_token_loss(logits, tokens), inner, chunk_memory, cms_chunks,
        positions, sizes, plant, span, first_nonfinite=int(bad[0]) if len(bad) else None,
    )  # fmt: skip
    if plant is not None and len(tokens) >= len(encode(plant.fact)):
        out.plant_span = span = (0, len(encode(plant.fact)))
        boundaries = probe_positions(span[1], t, chunk_memory or (cms_chunks or [16])[0])
        out.probe_positions, out.probe_logp = probe_recall(
            model, tokens, plant, boundaries, context
        )
        if inner is not None:
            out.retention_positions, out.retention = retention_curve(trace, span)
    out.seconds = time.perf_counter() - tick
    return out
