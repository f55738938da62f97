"""Gradio demo: HOPE writes what it reads into its memories — watch it happen.

    uv run python demo/app.py                                # uses runs/small/checkpoint.pt
    uv run python demo/app.py --checkpoint path/to/checkpoint.pt --port 7860

Type a prompt and a *planted fact* ``KEY=VALUE`` (e.g. ``pin=4721``). The fact is put on the first
line of the text (``"pin=4721\\n" + prompt``), HOPE completes it with
:func:`nested_learning.sampling.generate`, and the whole text (fact line + prompt + completion, at
most the model's context) is analysed in one traced forward pass plus one batch of probes:

1. **Surprise** (two panels). Top: the *next-token loss* ``-log p(x_t | x_<t)`` (nats) of the model
   at every token. Bottom: the *inner loss of the main Titans memory* ``M_mem`` of every layer,
   ``||M_mem,ξ(k_t) - v̂_t||²`` averaged over heads, where ``ξ`` is the chunk snapshot the token
   reads and learns from (Eq. 88-91), ``k_t`` its key and ``v̂_t = M_mem,ξ(v_t)`` its
   self-generated target (Eq. 84) — i.e. how surprising token t is to the memory it is written to.
2. **CMS updates.** For every Continuum-Memory level ℓ (chunk C^(ℓ), Eq. 71), the token counts at
   which its fast weights changed, read off the per-segment CMS states of
   :meth:`HopeLM.forward_online`, and the size of each change
   ``||θ̃_after - θ̃_before|| / ||θ0||`` (all layers, ``W_in`` and ``W_out`` together). The positions
   scheduled by the config (multiples of C^(ℓ)) are drawn as grey ticks.
3. **Recall of the planted fact** (two panels). Top (*the model*): at ``p`` = the end of the fact
   and every later main-memory chunk boundary (thinned to at most 12 more), the text up to ``p`` is
   followed by the probe ``"KEY="`` and scored on ``VALUE`` (teacher forced): mean ``log p`` per
   VALUE byte, nats (chance: ``-log 256``). Bottom
   (*the memory*): the main memory's recall error of the fact line's tokens,
   ``mean_t ||M_mem,c(k_t) - v̂_t||²`` over the fact's tokens t (their keys and targets as written),
   read with every later chunk snapshot c, divided by the same error before the fact was written:
   below 1 = the memory stored it, the rise afterwards = forgetting (retention α and overwrites).

Buttons and their API names: **Generate and analyse** (``api_name="generate"``; inputs prompt,
fact, new tokens, temperature, seed; outputs completion, the three plots, a summary) and **Analyse
only** (``api_name="analyze"``; inputs prompt and fact; the same outputs, no generation).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from nested_learning.checkpoint import load_checkpoint
from nested_learning.core.memory import FastWeights, memory_forward
from nested_learning.core.titans import SelfModifyingTitans
from nested_learning.data import VOCAB_SIZE, decode, encode
from nested_learning.models import HopeBlock, HopeBlockState, HopeLM, create_model
from nested_learning.sampling import generate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "runs" / "small" / "checkpoint.pt"
TITLE = "Nested Learning: The Illusion of Deep Learning Architectures"
PAPER_URL = "https://arxiv.org/abs/2512.24695"
TRAIN_COMMAND = "uv run python train.py --config small"
DEFAULT_PROMPT = "The for statement"
DEFAULT_FACT = "pin=4721"


# ----------------------------------------------------------------------------- model
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


# ----------------------------------------------------------------------------- tracing
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


# ----------------------------------------------------------------------------- analysis
@dataclass
class Plant:
    """The planted fact ``KEY=VALUE``: its text, the probe ``KEY=`` and the value."""

    fact: str
    probe: str
    value: str

    @classmethod
    def parse(cls, fact: str) -> Plant | None:
        """``"pin=4721"`` → Plant; None for an empty fact. Raises ValueError without ``=``."""
        fact = fact.strip()
        if not fact:
            return None
        key, sep, value = fact.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"the planted fact must look like KEY=VALUE (got {fact!r})")
        return cls(fact, key + "=", value)

    @property
    def line(self) -> str:
        """What is put in front of the prompt."""
        return self.fact + "\n"


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


def probe_recall(
    model: nn.Module, tokens: Tensor, plant: Plant, positions: list[int], context: int
) -> tuple[list[int], list[float]]:
    """Mean ``log p`` per VALUE byte after ``tokens[:p] + "KEY="``, for every ``p`` in
    ``positions`` that fits the context; one right-padded batch (the model is causal, so the
    padding cannot reach the scored positions)."""
    probe, value = encode(plant.probe), encode(plant.value)
    kept = [p for p in positions if p + len(probe) + len(value) <= context]
    if not kept:
        return [], []
    rows = [torch.cat([tokens[:p], probe, value]) for p in kept]
    width = max(len(r) for r in rows)
    batch = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    with torch.no_grad():
        logp = torch.log_softmax(model(batch).float(), dim=-1)
    scores = []
    for i, p in enumerate(kept):
        first = p + len(probe)  # position of VALUE's first byte
        pred = logp[i, first - 1 : first - 1 + len(value)]
        scores.append(float(pred.gather(1, value[:, None]).mean()))
    return kept, scores


def probe_positions(start: int, length: int, chunk: int, max_probes: int = 12) -> list[int]:
    """Where to probe: right after the fact (``start``), then every chunk boundary up to
    ``length``, thinned to multiples of ``chunk`` far enough apart for ≤ ``max_probes`` + 1."""
    step = chunk * max(1, math.ceil((length - start) / (max_probes * chunk)))
    return [start, *range(step * (start // step + 1), length + 1, step)]


def retention_curve(
    trace: MemoryTrace, span: tuple[int, int]
) -> tuple[list[int], np.ndarray | None]:
    """Main-memory recall error of the fact's tokens at every snapshot from the one before the fact
    was written to the end, divided by the error at that first one (``[layers, snapshots]``)."""
    a, b = span
    curves, positions = [], []
    for layer, records in enumerate(trace.chunks):
        if not records or trace.final[layer] is None:
            return [], None
        act = trace.activation[layer]
        keys, targets = [], []
        for r in records:  # keys/targets of the fact's tokens, as they were written
            lo, hi = max(a, r.start), min(b, r.start + r.k.shape[1])
            if lo < hi:
                keys.append(r.k[:, lo - r.start : hi - r.start])
                targets.append(r.target[:, lo - r.start : hi - r.start])
        if not keys:
            return [], None
        k, target = torch.cat(keys, 1), torch.cat(targets, 1)
        first = max(i for i, r in enumerate(records) if r.start <= a)
        final = trace.final[layer]
        assert final is not None
        snaps = [(r.start, r.w1, r.w2) for r in records[first:]]
        snaps.append((records[-1].start + records[-1].k.shape[1], final.w1, final.w2))
        with torch.no_grad():
            err = [float(memory_error(w1, w2, k, target, act).mean()) for _, w1, w2 in snaps]
        curves.append(np.asarray(err) / err[0])
        positions = [s for s, _, _ in snaps]
    return positions, np.stack(curves)


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


# ----------------------------------------------------------------------------- plots
def _finite(x: np.ndarray) -> np.ndarray:
    """NaN where ``x`` is not finite, so a diverged curve just stops."""
    return np.where(np.isfinite(x), x, np.nan)


def _mark_text(ax: Any, a: Analysis) -> None:
    """Shade the planted fact and mark where the generated text starts."""
    if a.plant_span is not None:
        ax.axvspan(a.plant_span[0] - 0.5, a.plant_span[1] - 0.5, color="gold", alpha=0.3)
    if a.prompt_end < len(a.tokens):
        ax.axvline(a.prompt_end - 0.5, color="black", ls=":", lw=1)


def plot_surprise(a: Analysis) -> Figure:
    """Next-token loss and main-memory inner loss per token."""
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    pos = np.arange(len(a.tokens))
    axes[0].plot(pos, _finite(a.ntp_loss), lw=0.8, color="tab:red")
    axes[0].axhline(math.log(VOCAB_SIZE), color="grey", ls="--", lw=0.8, label="uniform guess")
    axes[0].set_ylabel("nats")
    axes[0].set_title("Next-token loss  −log p(x_t | x_<t)")
    axes[0].legend(loc="upper right", fontsize=8)
    if a.inner_loss is None:
        axes[1].text(0.5, 0.5, "no self-modifying Titans memory in this model", ha="center",
                     transform=axes[1].transAxes)  # fmt: skip
    else:
        for layer, row in enumerate(a.inner_loss):
            axes[1].plot(pos, _finite(row), lw=0.8, label=f"layer {layer + 1}")
        axes[1].set_yscale("log")
        axes[1].legend(loc="upper right", fontsize=8, ncol=min(4, len(a.inner_loss)))
        if a.chunk_memory:
            for s in range(a.chunk_memory, len(a.tokens), a.chunk_memory):
                axes[1].axvline(s - 0.5, color="grey", lw=0.3)
    axes[1].set_title(
        "Main-memory inner loss ‖M_mem,ξ(k_t) − v̂_t‖² at the chunk snapshot (mean over heads)"
    )
    axes[1].set_xlabel("token position (yellow: planted fact · dotted: generated text starts)")
    for ax in axes:
        _mark_text(ax, a)
    return fig


def plot_cms(a: Analysis) -> Figure:
    """When each CMS level's fast weights changed, and by how much."""
    fig = Figure(figsize=(9, 2.6), layout="constrained")
    ax = fig.subplots()
    if not a.cms_chunks:
        ax.text(0.5, 0.5, "no Continuum Memory System in this model", ha="center")
        return fig
    t = len(a.tokens)
    for ell, c in enumerate(a.cms_chunks):
        scheduled = list(range(c, t + 1, c))
        ax.vlines(scheduled, ell - 0.45, ell + 0.45, color="lightgrey", lw=4)
        if a.cms_updates[ell]:
            size = np.nan_to_num(np.asarray(a.cms_update_size[ell]), nan=0.0, posinf=0.0)
            scale = size.max() if size.max() > 0 else 1.0
            ax.scatter(a.cms_updates[ell], [ell] * len(size), s=40 + 160 * size / scale,
                       color="tab:blue", zorder=3)  # fmt: skip
            for p, s in zip(a.cms_updates[ell], size, strict=True):
                ax.annotate(f"{s:.1e}", (p, ell + 0.18), ha="center", fontsize=7)
    for ell, (pos, size_) in enumerate(zip(a.cms_updates, a.cms_update_size, strict=True)):
        bad = [p for p, s in zip(pos, size_, strict=True) if not math.isfinite(s)]
        ax.scatter(bad, [ell] * len(bad), marker="x", color="tab:red", zorder=4)
    ax.set_yticks(range(len(a.cms_chunks)), [f"level {i + 1} (C={c})" for i, c in
                                             enumerate(a.cms_chunks)])  # fmt: skip
    ax.set_ylim(-0.6, len(a.cms_chunks) - 0.4)
    ax.set_xlim(0, max(t, 1))
    ax.set_xlabel("tokens read when the level updated")
    ax.set_title("CMS updates: dots = fast weights changed (label: ‖Δθ‖/‖θ0‖), grey = scheduled")
    return fig


def plot_recall(a: Analysis) -> Figure:
    """Recall of the planted fact by the model (probe) and by the main memory (retention)."""
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    if a.plant is None:
        axes[0].text(0.5, 0.5, "no planted fact", ha="center", transform=axes[0].transAxes)
        return fig
    if a.probe_positions:
        axes[0].plot(a.probe_positions, a.probe_logp, "o-", color="tab:green")
    axes[0].axhline(-math.log(VOCAB_SIZE), color="grey", ls="--", lw=0.8, label="chance")
    axes[0].set_ylabel("nats / byte")
    axes[0].set_title(
        f"Model: mean log p({a.plant.value!r} | text[:p] + {a.plant.probe!r}), per value byte"
    )
    axes[0].legend(loc="lower right", fontsize=8)
    if a.retention is None:
        axes[1].text(0.5, 0.5, "no main memory to read", ha="center", transform=axes[1].transAxes)
    else:
        for layer, row in enumerate(a.retention):
            label = f"layer {layer + 1}"
            axes[1].plot(a.retention_positions, _finite(row), "o-", ms=3, label=label)
        axes[1].axhline(1.0, color="grey", ls="--", lw=0.8)
        axes[1].set_yscale("log")
        axes[1].legend(loc="upper right", fontsize=8, ncol=min(4, len(a.retention)))
    axes[1].set_title("Main memory: recall error of the fact's tokens / error before writing them")
    axes[1].set_xlabel("p = tokens read (snapshot position)")
    for ax in axes:
        _mark_text(ax, a)
    return fig


def summary(a: Analysis) -> str:
    """One paragraph of numbers under the plots."""
    lines = [f"Analysed **{len(a.tokens)} tokens** in {a.seconds:.1f} s."]
    if np.isfinite(a.ntp_loss[1:]).any():
        lines.append(f"Mean next-token loss {np.nanmean(a.ntp_loss):.2f} nats.")
    if a.first_nonfinite is not None:
        lines.append(
            f"⚠ The model's outputs are not finite from token {a.first_nonfinite} on (a fast "
            "memory diverged): the curves stop there. Try a shorter text."
        )
    for ell, c in enumerate(a.cms_chunks):
        lines.append(f"CMS level {ell + 1} (C={c}) updated {len(a.cms_updates[ell])}×.")
    if a.probe_logp:
        lines.append(
            f"Recall of {a.plant.value if a.plant else ''!r}: {a.probe_logp[0]:.2f} → "
            f"{a.probe_logp[-1]:.2f} nats/byte (chance {-math.log(VOCAB_SIZE):.2f})."
        )
    return " ".join(lines)


# ----------------------------------------------------------------------------- app
def build_demo(checkpoint: Path | None = DEFAULT_CHECKPOINT) -> gr.Blocks:
    """Build the interface (without launching it)."""
    model, context, status = load_model(checkpoint)

    def analyse_text(text: str, prompt_end: int, plant: Plant | None) -> tuple[Any, ...]:
        tokens = encode(text)[:context]
        if len(tokens) < 2:
            raise gr.Error("The text is too short to analyse.")
        a = analyze_tokens(model, tokens, min(prompt_end, len(tokens)), plant, context)
        return plot_surprise(a), plot_cms(a), plot_recall(a), summary(a)

    def parse(fact: str) -> Plant | None:
        try:
            return Plant.parse(fact)
        except ValueError as err:
            raise gr.Error(str(err)) from err

    def complete(
        prompt: str, fact: str, max_new_tokens: float, temperature: float, seed: float
    ) -> tuple[Any, ...]:
        if not prompt:
            raise gr.Error("Type a prompt first.")
        plant = parse(fact)
        head = (plant.line if plant else "") + prompt
        tokens = encode(head)[-context:].unsqueeze(0)
        with single_thread():
            out, note = complete_tokens(
                model, tokens, int(max_new_tokens), context, temperature, int(seed)
            )
            new = decode(out[0, tokens.size(1) :])
            *plots, text = analyse_text(head + new, len(encode(head)), plant)
        return (prompt + new, *plots, f"{note} {text}".strip())

    def analyse_only(prompt: str, fact: str) -> tuple[Any, ...]:
        if not prompt:
            raise gr.Error("Type a prompt first.")
        plant = parse(fact)
        text = (plant.line if plant else "") + prompt
        with single_thread():
            plots = analyse_text(text, len(encode(text)), plant)
        return (prompt, *plots)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n[Paper]({PAPER_URL}) · {status}\n\n"
            "HOPE learns *while it reads*: a self-modifying Titans memory is written every chunk "
            "and a Continuum Memory System of MLPs updates at several frequencies. Plant a fact "
            "`KEY=VALUE` (put on the first line), generate, and watch the memories."
        )
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPT, lines=3, scale=3)
            fact = gr.Textbox(label="Planted fact (KEY=VALUE, first line)", value=DEFAULT_FACT)
        with gr.Row():
            max_new = gr.Slider(1, 200, value=32, step=1, label="New tokens")
            temperature = gr.Slider(
                0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)"
            )
            seed = gr.Number(value=0, precision=0, label="Seed")
        with gr.Row():
            button = gr.Button("Generate and analyse", variant="primary")
            analyse_button = gr.Button("Analyse only")
        output = gr.Textbox(label="Completion", lines=4)
        info = gr.Markdown(label="Summary")
        surprise = gr.Plot(label="Surprise")
        cms = gr.Plot(label="CMS updates")
        recall = gr.Plot(label="Recall of the planted fact")
        outputs = [output, surprise, cms, recall, info]
        button.click(
            complete, [prompt, fact, max_new, temperature, seed], outputs, api_name="generate"
        )
        analyse_button.click(analyse_only, [prompt, fact], outputs, api_name="analyze")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Gradio demo.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    build_demo(args.checkpoint).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
