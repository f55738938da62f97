"""Continuum Memory System (CMS), arXiv 2512.24695 §7, Eq. 70-74.

CMS is a chain of MLP blocks ``MLP^(f_1) … MLP^(f_K)`` ordered **fast → slow** (Fig. 5: the block
right after the sequence mixer is the high-frequency one). Block l owns a per-sequence *fast copy*
θ̃^(l) of its weights, initialised from meta-learned θ0^(l), and updates it every C^(l) tokens with
the accumulated gradient of the **task loss** (next-token prediction for an LM), in training and at
inference alike (Eq. 71):

    θ̃^(l)_{i+1} = θ̃^(l)_i - Σ_{t=i-C^(l)+1}^{i} η^(l) ∇_{θ̃^(l)} L_t   if i ≡ 0 (mod C^(l))
    θ̃^(l)_{i+1} = θ̃^(l)_i                                             otherwise.

[fix] The printed sum runs over t = i-C … i, i.e. C+1 tokens, so consecutive updates would share a
token. We sum exactly the C tokens of the chunk that just ended.

Division of labour. This module only *reads* (``forward``) and *writes* (``step``); the model drives
it (see ``run_online`` for a reference driver):

    state = cms.init_state(B)
    for each segment of n ≤ C^(1) tokens (never straddling a multiple of C^(1)):
        st = cms.prepare_for_inner_grad(state)        # no-op in training
        y = ...cms(h_seg, st)...; loss = task loss of the segment
        state = cms.step(st, cms.inner_grads(loss, st), n)

**The segment loss must be summed over the batch** (any reduction over tokens is fine, but the
batch must be summed, not averaged): each sequence owns its fast copy ``[B, …]``, so
∂(Σ_b L_b)/∂θ̃_b = ∂L_b/∂θ̃_b and every sequence then evolves exactly as if it were alone. A batch
mean would silently scale every η^(l) by 1/B. Summing the per-token losses of a segment reproduces
Eq. 71 literally (η per token); a per-token mean rescales η^(l) by 1/n.

Meta-learning of θ0 (Eq. 73, "sequential": all initial states are learned by the outer optimizer):
the fast copy is kept as θ̃ = θ0 + Δ with θ0 in the autograd graph, so the outer loss reaches θ0
through every read.
* ``first_order=True`` (default): Δ is detached at every write — the outer gradient w.r.t. θ0 is
  the sum of the read gradients (first-order MAML). Memory is O(1) in sequence length.
* ``first_order=False``: Δ stays in the graph and ``inner_grads`` uses ``create_graph=True``, so the
  outer gradient flows through every inner update (full second order; memory grows with L/C^(1)).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VARIANTS = ("sequential", "nested", "independent")

# Fast tensors per level, in this order: W_in [h, d], W_out [d, h].
_N_FAST = 2


def _per_level(
    value: float | int | tuple[float, ...] | tuple[int, ...], n: int
) -> tuple[float, ...]:
    return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),) * n


@dataclass(frozen=True)
class CMSConfig:
    """Hyper-parameters of a CMS chain (one entry per level, ordered fast → slow).

    Attributes:
        d_model: width d of the residual stream.
        chunk_sizes: C^(l), tokens between two updates of level l. All > 0 and each a multiple of
            ``chunk_sizes[0]`` (so level 0 is the fastest and every boundary is a level-0 boundary);
            for "nested", each must also divide the next (parent) one.
        hidden: d_ff per level (int or tuple). ``None`` → ``round(hidden_mult * d_model)``.
        hidden_mult: multiplier used when ``hidden`` is None.
        inner_lr: η^(l) per level (tuple) or one float for all; ≥ 0 (0 freezes a level at θ0).
        variant: "sequential" (Eq. 73, default), "nested" (Eq. 72) or "independent" (Eq. 74).
        first_order: detach Δ = θ̃ - θ0 at each write (see module docstring).
        norm_eps: epsilon of the pre-norm RMSNorm of each level.
    """

    d_model: int
    chunk_sizes: tuple[int, ...]
    hidden: int | tuple[int, ...] | None = None
    hidden_mult: float = 4.0
    inner_lr: float | tuple[float, ...] = 1e-2
    variant: str = "sequential"
    first_order: bool = True
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("chunk_sizes", "hidden", "inner_lr"):  # accept lists (e.g. from YAML)
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.d_model <= 0:
            raise ValueError(f"d_model must be > 0, got {self.d_model}")
        self._check_chunk_sizes()
        self._check_per_level("hidden", self.hidden)
        self._check_per_level("inner_lr", self.inner_lr)
        if self.hidden is None and self.hidden_mult <= 0:
            raise ValueError(f"hidden_mult must be > 0, got {self.hidden_mult}")
        if any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"hidden sizes must be > 0, got {self.hidden_sizes}")
        if any(not math.isfinite(lr) or lr < 0 for lr in self.inner_lrs):
            raise ValueError(f"inner_lr must be finite and >= 0, got {self.inner_lr}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.norm_eps <= 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps}")

    def _check_chunk_sizes(self) -> None:
        cs = self.chunk_sizes
        if not isinstance(cs, tuple) or len(cs) == 0:
            raise ValueError(f"chunk_sizes must be a non-empty tuple, got {cs!r}")
        if any(c <= 0 for c in cs):
            raise ValueError(f"chunk_sizes must all be > 0, got {cs}")
        if any(c % cs[0] for c in cs):
            raise ValueError(f"chunk_sizes must all be multiples of chunk_sizes[0], got {cs}")
        if self.variant == "nested" and any(b % a for a, b in itertools.pairwise(cs)):
            # a parent must close its context on a child boundary, else the child is reset mid-chunk
            raise ValueError(f"nested chunk_sizes must each divide the next one, got {cs}")

    def _check_per_level(self, name: str, value: object) -> None:
        if isinstance(value, tuple) and len(value) != self.num_levels:
            raise ValueError(
                f"{name} has {len(value)} entries but chunk_sizes has {self.num_levels}"
            )

    @property
    def num_levels(self) -> int:
        return len(self.chunk_sizes)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        if self.hidden is None:
            return (round(self.hidden_mult * self.d_model),) * self.num_levels
        return tuple(int(h) for h in _per_level(self.hidden, self.num_levels))

    @property
    def inner_lrs(self) -> tuple[float, ...]:
        return _per_level(self.inner_lr, self.num_levels)


@dataclass
class CMSState:
    """Per-sequence fast state of a CMS chain.

    Attributes:
        weights: ``weights[l] = [W_in [B, h_l, d], W_out [B, d, h_l]]``, the fast copy θ̃^(l).
        accum: same shapes; Σ η^(l)·grad since level l's last update (its pending step).
        tokens_seen: tokens consumed by ``step`` since ``init_state``.
    """

    weights: list[list[Tensor]]
    accum: list[list[Tensor]]
    tokens_seen: int = 0

    @property
    def batch_size(self) -> int:
        return int(self.weights[0][0].shape[0])

    def detach(self) -> CMSState:
        """Copy with every tensor cut from the autograd graph (e.g. to carry state across calls)."""
        return CMSState(
            [[w.detach() for w in ws] for ws in self.weights],
            [[a.detach() for a in acc] for acc in self.accum],
            self.tokens_seen,
        )


class CMSLevel(nn.Module):
    """One CMS block MLP^(f_l) (Eq. 70): x ↦ x + W_out act(W_in · RMSNorm(x)).

    [choice] Pre-norm residual MLP (the paper drops norms "for clarity"); act = GELU; no biases.
    Only W_in [h, d] and W_out [d, h] are fast (their θ0 are these nn.Parameters); the RMSNorm gain
    is an ordinary slow parameter learned by the outer optimizer only. Init: W_in ~ N(0, 1/d),
    W_out ~ N(0, 1/(h·K)) for K levels, so the K residual branches keep the stream variance O(1).
    """

    def __init__(self, d_model: int, hidden: int, eps: float, out_scale: float) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=eps)
        self.w_in = nn.Parameter(torch.randn(hidden, d_model) * d_model**-0.5)
        self.w_out = nn.Parameter(torch.randn(d_model, hidden) * (hidden**-0.5 * out_scale))

    def branch(self, x: Tensor, w_in: Tensor, w_out: Tensor) -> Tensor:
        """W_out act(W_in RMSNorm(x)) with per-sequence weights: x [B, T, d], w_in [B, h, d],
        w_out [B, d, h] → [B, T, d] (batched matmuls, no loop over the batch)."""
        hid = F.gelu(torch.matmul(self.norm(x), w_in.transpose(-1, -2)))
        return torch.matmul(hid, w_out.transpose(-1, -2))


class ContinuumMemory(nn.Module):
    """CMS chain (Eq. 70) with online chunk-wise task-loss updates (Eq. 71) and three variants.

    * sequential (Eq. 73): y = MLP^(f_K)(… MLP^(f_1)(x)); each θ0^(l) is meta-learned.
    * nested (Eq. 72): same chain; [reading] level l's context is one chunk of its parent l+1, so
      whenever level l+1 applies an update, level l is re-initialised to θ0^(l) and its pending
      accumulator is dropped (the context it was compressing has ended). The slowest level is
      reset only by ``init_state``.
    * independent (Eq. 74): y = x + Σ_l softmax(a)_l · branch_l(x), all levels read the same x;
      [choice] Agg = learnable softmax-weighted sum of the residual branches, a initialised to 0
      (uniform), which equals Σ_l softmax(a)_l · MLP^(f_l)(x) because the weights sum to 1.
    """

    def __init__(self, config: CMSConfig) -> None:
        super().__init__()
        self.config = config
        out_scale = config.num_levels**-0.5  # keeps the residual-stream variance O(1) over levels
        self.levels = nn.ModuleList(
            CMSLevel(config.d_model, h, config.norm_eps, out_scale) for h in config.hidden_sizes
        )
        self.agg_logits: nn.Parameter | None = None
        if config.variant == "independent":
            self.agg_logits = nn.Parameter(torch.zeros(config.num_levels))

    # ---------------------------------------------------------------- state
    def _theta0(self, level: int, batch_size: int) -> list[Tensor]:
        lv = self.levels[level]
        assert isinstance(lv, CMSLevel)
        # Under no_grad, detach explicitly: a view made in no-grad mode would still report
        # requires_grad=True without being connected to any graph.
        grad_on = torch.is_grad_enabled()
        return [
            (p if grad_on else p.detach()).unsqueeze(0).expand(batch_size, *p.shape)
            for p in (lv.w_in, lv.w_out)
        ]

    def _zeros(self, level: int, batch_size: int) -> list[Tensor]:
        return [torch.zeros_like(w.detach()) for w in self._theta0(level, batch_size)]

    def init_state(self, batch_size: int) -> CMSState:
        """Fresh state: every fast copy = θ0 expanded to [B, …] (still in θ0's graph), empty
        accumulators, 0 tokens seen."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        n = self.config.num_levels
        return CMSState(
            [self._theta0(ell, batch_size) for ell in range(n)],
            [self._zeros(ell, batch_size) for ell in range(n)],
        )

    def reset_levels(self, state: CMSState, levels: Sequence[int]) -> CMSState:
        """Re-initialise the given levels to θ0 and drop their pending steps (e.g. continual
        deployment: keep slow levels, reset fast ones per context)."""
        weights, accum = list(state.weights), list(state.accum)
        for ell in levels:
            weights[ell] = self._theta0(ell, state.batch_size)
            accum[ell] = self._zeros(ell, state.batch_size)
        return CMSState(weights, accum, state.tokens_seen)

    def fast_weights(self, state: CMSState) -> list[Tensor]:
        """Tensors to differentiate the task loss against, flattened level by level:
        ``[W_in^(1), W_out^(1), W_in^(2), W_out^(2), …]`` (shapes [B, h, d], [B, d, h])."""
        return [w for ws in state.weights for w in ws]

    def prepare_for_inner_grad(self, state: CMSState) -> CMSState:
        """Make every fast weight differentiable. Weights already in a graph (training: they hang
        off θ0) are kept; others (state built under ``torch.no_grad``) become detached leaves with
        ``requires_grad=True``. Call it inside ``torch.enable_grad()`` at inference."""
        weights = [
            [w if w.requires_grad else w.detach().requires_grad_(True) for w in ws]
            for ws in state.weights
        ]
        return CMSState(weights, state.accum, state.tokens_seen)

    def _second_order(self) -> bool:
        return not self.config.first_order and self.training and torch.is_grad_enabled()

    def inner_grads(
        self, loss: Tensor, state: CMSState, *, retain_graph: bool = True
    ) -> list[Tensor]:
        """∂loss/∂θ̃ for every fast weight (zeros where the loss does not depend on a level).

        ``create_graph`` is on only for second-order training; ``retain_graph`` defaults to True so
        the caller can still backpropagate the same loss into the outer parameters.
        """
        fast = self.fast_weights(state)
        create = self._second_order()
        grads = torch.autograd.grad(
            loss, fast, retain_graph=retain_graph or create, create_graph=create, allow_unused=True
        )
        return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, fast, strict=True)]

    # ---------------------------------------------------------------- read
    def forward(self, x: Tensor, state: CMSState) -> Tensor:
        """Read with the current fast weights (no update here). x [B, T, d] → [B, T, d]."""
        if x.dim() != 3 or x.shape[0] != state.batch_size:
            raise ValueError(
                f"x must be [B, T, d] with B = state batch size {state.batch_size}, "
                f"got {tuple(x.shape)}"
            )
        levels = [lv for lv in self.levels if isinstance(lv, CMSLevel)]
        if self.agg_logits is None:  # sequential / nested: chain, fast → slow (Eq. 70)
            for lv, (w_in, w_out) in zip(levels, state.weights, strict=True):
                x = x + lv.branch(x, w_in, w_out)
            return x
        # independent (Eq. 74): every level reads the same x
        outs = [lv.branch(x, *ws) for lv, ws in zip(levels, state.weights, strict=True)]
        mix = torch.softmax(self.agg_logits, dim=0).to(x.dtype)
        return x + torch.einsum("l,lbtd->btd", mix, torch.stack(outs))

    # ---------------------------------------------------------------- write
    def _check_segment(self, state: CMSState, n_tokens: int) -> None:
        c1 = self.config.chunk_sizes[0]
        if n_tokens <= 0 or state.tokens_seen % c1 + n_tokens > c1:
            raise ValueError(
                f"n_tokens={n_tokens} must be > 0 and must not cross a multiple of the smallest "
                f"chunk size {c1} (tokens_seen={state.tokens_seen}); drive CMS with segments of "
                f"chunk_sizes[0] tokens (or pieces of one)"
            )

    def _write(self, w: Tensor, step: Tensor, theta0: Tensor) -> Tensor:
        """θ̃ - step. Second order keeps the graph; otherwise θ̃ = θ0 + Δ with Δ detached, rebuilt
        from θ0 each time so no chain of old tensors survives across writes."""
        if self._second_order():
            return w - step
        with torch.no_grad():  # Δ in one buffer, updated in place (no graph to keep)
            delta = (w - step).sub_(theta0)
        return theta0 + delta

    def step(self, state: CMSState, grads: Sequence[Tensor | None], n_tokens: int) -> CMSState:
        """Consume the task-loss gradients of one segment of ``n_tokens`` tokens (Eq. 71).

        Args:
            state: state whose ``fast_weights`` produced ``grads``.
            grads: ∂L_segment/∂θ̃ in ``fast_weights`` order (None = zero).
            n_tokens: tokens in the segment; the segment may not straddle a multiple of C^(1).

        Returns:
            New state (inputs are not mutated): accum^(l) += η^(l)·grad for every level; level l
            applies θ̃ ← θ̃ - accum^(l) and clears it iff tokens_seen hits a multiple of C^(l).
        """
        self._check_segment(state, n_tokens)
        if len(grads) != len(self.fast_weights(state)):
            raise ValueError(
                f"expected {len(self.fast_weights(state))} gradients, got {len(grads)}"
            )
        seen = state.tokens_seen + n_tokens
        weights, accum = [], []
        for ell in range(self.config.num_levels):
            ws, acc = self._advance(state, ell, grads[_N_FAST * ell : _N_FAST * (ell + 1)], seen)
            weights.append(ws)
            accum.append(acc)
        if self._second_order():
            # Fresh alias per segment: the next inner gradient must be ∂L_seg/∂θ̃ through this
            # segment's read only, not also through earlier updates that used the same tensor.
            weights = [[w.view_as(w) for w in ws] for ws in weights]
        new = CMSState(weights, accum, seen)
        if self.config.variant == "nested":
            parents_done = [
                ell
                for ell in range(self.config.num_levels - 1)
                if seen % self.config.chunk_sizes[ell + 1] == 0
            ]
            new = self.reset_levels(new, parents_done)
        return new

    def _advance(
        self, state: CMSState, ell: int, grads: Sequence[Tensor | None], seen: int
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Level l: accumulate η^(l)·grad; at a multiple of C^(l) apply and clear (Eq. 71)."""
        lr, ws = self.config.inner_lrs[ell], state.weights[ell]
        acc = [
            torch.add(a, self._inner(g, a), alpha=lr)
            for a, g in zip(state.accum[ell], grads, strict=True)
        ]
        if seen % self.config.chunk_sizes[ell] != 0:
            return ws, acc
        th0 = self._theta0(ell, state.batch_size)
        ws = [self._write(w, a, t) for w, a, t in zip(ws, acc, th0, strict=True)]
        return ws, self._zeros(ell, state.batch_size)

    def _inner(self, g: Tensor | None, like: Tensor) -> Tensor:
        if g is None:
            return torch.zeros_like(like)
        if g.shape != like.shape:
            raise ValueError(f"gradient shape {tuple(g.shape)} != fast weight {tuple(like.shape)}")
        return g if self._second_order() else g.detach()


def run_online(
    cms: ContinuumMemory,
    x: Tensor,
    segment_loss: Callable[[Tensor, int, int], Tensor],
    state: CMSState | None = None,
    segment: int | None = None,
) -> tuple[Tensor, CMSState, Tensor]:
    """Reference driver (read → task loss → inner grads → write), one segment at a time.

    Args:
        x: [B, T, d] CMS input.
        segment_loss: ``(y_seg [B, n, d], start, end) -> scalar`` task loss of tokens [start, end);
            must be summed over the batch and use only targets ≤ ``end`` to stay causal.
        state: state to continue from (default: ``init_state``).
        segment: tokens per segment (default ``chunk_sizes[0]``).

    Returns:
        (outputs [B, T, d], final state, Σ segment losses — backprop it for the outer gradient).
    """
    n = segment or cms.config.chunk_sizes[0]
    state = cms.init_state(x.shape[0]) if state is None else state
    outer_grad = torch.is_grad_enabled()
    outs, total = [], x.new_zeros(())
    for s in range(0, x.shape[1], n):
        e = min(s + n, x.shape[1])
        with torch.enable_grad():
            st = cms.prepare_for_inner_grad(state)
            y = cms(x[:, s:e], st)
            loss = segment_loss(y, s, e)
            grads = cms.inner_grads(loss, st, retain_graph=outer_grad)
        state = cms.step(st, grads, e - s)
        outs.append(y if outer_grad else y.detach())
        total = total + (loss if outer_grad else loss.detach())
    return torch.cat(outs, dim=1), state, total
