"""Self-modifying Titans sequence mixer (arXiv 2512.24695 §8.1-8.2, Eq. 83-92; spec §7, §14.2).

Per head, with fast residual-MLP memories ``M_k, M_v, M_eta, M_alpha, M_mem``
(:mod:`nested_learning.core.memory`), token ``t`` of a chunk whose snapshot index is
``xi(t) = C * floor((t-1)/C)`` (1-based ``t``)::

    k_t = l2norm(M_k,xi(x_t)),  v_t = M_v,xi(x_t),  y_t = M_mem,xi(q_t),  q_t = l2norm(W_q x_t) (83)
    eta_t = eta_scale * sigmoid(w_eta . M_eta,xi(x_t) + b_eta),  alpha_t = sigmoid(w_alpha . ...)
    v_hat_{m,t} = M_m,xi(v_t)                               (84: each memory makes its own target)
    M_m <- M_m (alpha_t I - eta'_t k_t k_t^T) - eta'_t grad ||M_m,xi(k_t) - v_hat_{m,t}||^2   (88)

Design choices where the paper is silent or wrong (also listed in docs/ALGORITHMS.md):

* **Causal snapshot.** Eq. 90 prints ``C * ceil(t/C)`` (the end of the *current* chunk), which
  lets a token read writes of later tokens. All reads, targets and inner gradients of a chunk use
  the state at the end of the previous chunk; the chunk's writes land at its end (spec §13.1-2).
* **Two clocks.** ``M_mem`` uses ``chunk_size_memory``; ``M_k, M_v, M_eta, M_alpha`` share
  ``chunk_size_other``. The four "other" memories never read ``M_mem``, so they are run first over
  the whole call (stacked as one batched memory), then ``M_mem`` consumes their k, v, eta, alpha.
* **Step size.** ``eta_t`` is the proximal rate; the applied step is the exact DGD
  ``eta' = eta / (1 + eta ||k||^2)`` (= ``eta/(1+eta)`` as ``k`` is unit-norm), on both the decay
  and the gradient term, so ``eta' ||k||^2 < 1`` always. With ``dgd=False`` the step is ``eta``.
* **DGD on a 2-layer memory.** Decay ``alpha I - eta k k^T`` on the input-side ``W2`` only;
  ``W1`` is gated by ``alpha`` (spec §7.3). Momentum (``momentum=True``) is Titans' EMA on the
  gradient term.
* **Stop-gradient on targets.** The inner gradient treats ``v_hat`` as a constant (no
  ``dM(v)/dW`` term, otherwise ``M = const`` is a trivial minimiser); the outer gradient still flows
  through ``v_hat`` into the written weights.
* **Normalised v.** ``v_t = l2norm(M_v,xi(x_t))`` like ``k`` and ``q`` (``normalize_v``; the paper
  normalises only q and k). ``v`` is used only as the input of the self-generated targets
  ``M_m(v)``, and ``M_v`` is then regressed onto ``M_v(M_v(x))``, its own square: any gain > 1 of
  ``M_v`` is squared in the target and reinforced by the write, so with unnormalised ``v`` the
  fast weights grow super-exponentially over the chunks of one sequence (``||v||`` 4 -> 9 -> 18
  -> 3e3 -> 5e11 in exp2 once AdamW had drifted ``||v||`` from 2 to 4) - a forward-pass blow-up
  that no outer gradient clipping sees. With unit ``k`` and ``v`` the write regresses
  ``W1 (sigma(W2 k) - sigma(W2 v))`` onto ``v - k`` (norm <= 2): a bounded target.
* **Scalar gates.** ``M_eta``/``M_alpha`` are d_head-dim residual memories trained like the others
  on their d_head-dim outputs; a learned per-head linear readout gives the scalar (spec §7.4).
  Biases start at ``eta_bias_init`` (eta small) and ``alpha_bias_init`` (alpha ~ 1).
* **Inputs.** A causal depthwise conv (window 4) on the mixer input, then a static projection
  ``W_in`` whose per-head slices feed ``M_k, M_v, M_eta, M_alpha``; ``q`` is static (paper text and
  ablation). The Titans baseline (``self_modifying=False``) uses static ``W_k, W_v, W_eta,
  W_alpha`` after the same conv, and the target ``v`` instead of ``M_mem(v)``.
* **Output.** ``W_out( RMSNorm(y) * SiLU(W_gate x) )``, the Titans norm-and-gate.
* **Meta-learning.** Initial states are per-head ``nn.Parameter`` shared over the batch and
  learned through the unrolled writes. ``first_order=True`` detaches the write increments
  (``W_c = W_{c-1} + sg(Delta_c)``): the initial states still get the gradient of every read
  (straight-through), but nothing flows through the inner update, so no write is kept for
  backward (the memory-bound switch). Caveat: k, v, eta, alpha reach the output *only* through
  ``M_mem``'s writes, so in this mode ``M_k, M_v, M_eta, M_alpha`` (and ``W_in``, or ``W_k, W_v,
  W_eta, W_alpha`` in the baseline) receive no outer gradient at all; only q, the output path and
  ``M_mem``'s initial state learn.
* **Calls in pieces.** Chunks restart at every call. A trailing partial chunk is read with its
  snapshot and then written (flushed), so splitting a sequence into pieces whose lengths are
  multiples of both chunk sizes gives exactly the whole-sequence outputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nested_learning.core.dgd import dgd_step_size
from nested_learning.core.memory import (
    ACTIVATIONS,
    ChunkCoefficients,
    FastWeights,
    dgd_chunk_apply,
    dgd_chunk_coefficients,
    dgd_chunk_update,
    dgd_chunk_update_sequential,
    memory_chunk_grads,
    memory_forward,
    memory_forward_many,
)

__all__ = ["MEMORY_NAMES", "SelfModifyingTitans", "TitansConfig", "TitansState"]

#: memories of the self-modifying mixer; the first four share ``chunk_size_other``.
MEMORY_NAMES = ("k", "v", "eta", "alpha", "mem")
_OTHER = MEMORY_NAMES[:4]


@dataclass(frozen=True)
class TitansConfig:
    """Hyper-parameters of :class:`SelfModifyingTitans` (none of them is reported in the paper)."""

    d_model: int
    n_heads: int = 4
    mem_hidden: int | None = None  # h of each memory; None -> d_head
    chunk_size_memory: int = 16  # C for M_mem
    chunk_size_other: int = 16  # C for M_k, M_v, M_eta, M_alpha
    conv_window: int = 4
    eta_scale: float = 0.1  # eta in (0, eta_scale)
    momentum: bool = True
    momentum_beta: float = 0.9
    first_order: bool = False  # detach write increments (see module docstring caveat)
    self_modifying: bool = True
    dgd: bool = True  # False: plain GD + retention ("w/o DGD" ablation)
    retention: bool = True  # False: alpha = 1 ("w/o weight decay" ablation)
    activation: str = "silu"
    eta_bias_init: float = -2.0  # eta_0 = eta_scale * sigmoid(-2) ~ 0.12 eta_scale
    alpha_bias_init: float = 5.0  # alpha_0 = sigmoid(5) ~ 0.993
    parallel_update: bool = True  # closed-form chunk write; False: rank-1 token loop
    normalize_v: bool = True  # L2-normalise v = M_v(x) like k (self-modifying only; see docstring)
    #: memories among k, v, eta, alpha never written in context: they keep their meta-learned
    #: initial state ("w/o inner-projection" ablation of Table 6: a static projection instead)
    static: tuple[str, ...] = ()
    #: run the mixer through ``torch.compile`` (inductor fuses the many small ops of the chunk
    #: writes; on a CPU it needs a C++ compiler). One graph per input shape: for training at a
    #: fixed length. Not differentiable twice (no second-order CMS through it).
    compile: bool = False
    #: False: no memory is ever written in context, every read sees the meta-learned initial
    #: state (a static network: the negative control of the experiments, and the test-time
    #: "memories off" switch of ``nested_learning.memory_use``)
    writes: bool = True
    #: True: the step along k is beta = 2 sigmoid(.) in (0, 2) instead of DGD's eta' (Grazzi et
    #: al., 2024), so the transition alpha I - beta k k^T can reach eigenvalues in (-1, 0) (the
    #: exact DGD step keeps them in (alpha - 1, alpha]); needs dgd and no momentum, whose update
    #: is no longer this transition
    negative_eigenvalues: bool = False
    #: True: the writes' backward is hand-derived (core/chunk_write.py), differentiable once;
    #: False for a second backward through the mixer (second-order CMS)
    fused_backward: bool = True

    def __post_init__(self) -> None:
        positive = ("d_model", "n_heads", "chunk_size_memory", "chunk_size_other", "conv_window")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TitansConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"TitansConfig.d_model must be divisible by n_heads={self.n_heads}, "
                f"got {self.d_model!r}"
            )
        if self.mem_hidden is not None and (
            not isinstance(self.mem_hidden, int) or self.mem_hidden <= 0
        ):
            raise ValueError(
                f"TitansConfig.mem_hidden must be a positive int, got {self.mem_hidden!r}"
            )
        if not self.eta_scale > 0:
            raise ValueError(f"TitansConfig.eta_scale must be > 0, got {self.eta_scale!r}")
        if not 0 <= self.momentum_beta < 1:
            raise ValueError(
                f"TitansConfig.momentum_beta must be in [0, 1), got {self.momentum_beta!r}"
            )
        if not set(self.static) <= set(_OTHER) or (self.static and not self.self_modifying):
            raise ValueError(
                f"TitansConfig.static must name memories among {_OTHER} of a self-modifying "
                f"mixer, got {self.static!r}"
            )
        if self.negative_eigenvalues and (self.momentum or not self.dgd):
            raise ValueError(
                "TitansConfig.negative_eigenvalues needs dgd=True and momentum=False (the "
                f"transition alpha I - beta k k^T), got dgd={self.dgd}, momentum={self.momentum}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"TitansConfig.activation must be one of {sorted(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden(self) -> int:
        return self.mem_hidden if self.mem_hidden is not None else self.d_head


@dataclass
class TitansState:
    """Recurrent state carried between calls of :meth:`SelfModifyingTitans.forward`.

    ``memories[name]`` holds ``w1 [B, H, d_head, h]``, ``w2 [B, H, h, d_head]`` and, with momentum,
    ``m1``/``m2`` of the same shapes. ``conv_tail`` is ``[B, conv_window - 1, d_model]`` (the last
    inputs, for the causal conv); ``position`` counts the tokens seen so far.
    """

    memories: dict[str, FastWeights]
    conv_tail: Tensor
    position: int = 0

    def detach(self) -> TitansState:
        """Cut the autograd history (truncated BPTT across calls)."""
        mems = {n: fw.map(Tensor.detach) for n, fw in self.memories.items()}
        return TitansState(mems, self.conv_tail.detach(), self.position)


def _stack(states: list[FastWeights]) -> FastWeights:
    """Stack memories on dim 2 (``[B, H, ...] -> [B, H, M, ...]``) so they run as one batch."""

    def cat(ts: list[Tensor | None]) -> Tensor | None:
        present = [t for t in ts if t is not None]
        return torch.stack(present, 2) if present else None

    w1, w2, m1, m2 = (cat(list(col)) for col in zip(*states, strict=True))
    assert w1 is not None and w2 is not None
    return FastWeights(w1, w2, m1, m2)


def _straight_through(old: FastWeights, new: FastWeights) -> FastWeights:
    """``old + sg(new - old)``: value of ``new``, gradient of ``old`` (the first-order write)."""

    def st(o: Tensor | None, n: Tensor | None) -> Tensor | None:
        return None if o is None or n is None else o + (n - o).detach()

    w1, w2 = st(old.w1, new.w1), st(old.w2, new.w2)
    assert w1 is not None and w2 is not None
    return FastWeights(w1, w2, st(old.m1, new.m1), st(old.m2, new.m2))


def _keep_static(keep: Tensor, old: FastWeights, new: FastWeights) -> FastWeights:
    """``new`` with the stack slots where ``keep`` is True taken from ``old`` (never written)."""

    def pick(o: Tensor | None, n: Tensor | None) -> Tensor | None:
        return None if o is None or n is None else torch.where(keep, o, n)

    w1, w2 = pick(old.w1, new.w1), pick(old.w2, new.w2)
    assert w1 is not None and w2 is not None
    return FastWeights(w1, w2, pick(old.m1, new.m1), pick(old.m2, new.m2))


class SelfModifyingTitans(nn.Module):
    """Self-modifying Titans mixer: ``[B, T, d_model] -> [B, T, d_model]`` plus a recurrent state.

    See the module docstring for the equations and design choices. ``forward`` processes each
    chunk's tokens in parallel (batched matmuls over batch, heads and tokens) and applies the
    chunk's writes in closed form; the only Python loops are over chunks.
    """

    def __init__(self, config: TitansConfig) -> None:
        super().__init__()
        self.config = c = config
        d, heads, dh, h = c.d_model, c.n_heads, c.d_head, c.hidden
        self.conv = nn.Conv1d(d, d, c.conv_window, groups=d)
        names = ("q", "in") if c.self_modifying else ("q", "k", "v")
        self.proj = nn.ModuleDict({n: nn.Linear(d, d, bias=False) for n in names})
        self.memory_names: tuple[str, ...] = MEMORY_NAMES if c.self_modifying else ("mem",)
        bias_init = {"eta": c.eta_bias_init, "alpha": c.alpha_bias_init}
        if c.self_modifying:  # per-head linear readout of M_eta / M_alpha to a scalar
            self.readout_w = nn.ParameterDict(
                {n: nn.Parameter(torch.randn(heads, dh) * 0.02) for n in bias_init}
            )
            self.readout_b = nn.ParameterDict(
                {n: nn.Parameter(torch.full((heads,), b)) for n, b in bias_init.items()}
            )
        else:
            for n, b in bias_init.items():
                lin = nn.Linear(d, heads)
                nn.init.constant_(lin.bias, b)
                self.proj[n] = lin
        # Meta-learned initial states: W1 ~ 0 so every memory starts near the identity map.
        self.init_w1 = nn.ParameterDict(
            {n: nn.Parameter(torch.randn(heads, dh, h) * 0.02) for n in self.memory_names}
        )
        self.init_w2 = nn.ParameterDict(
            {n: nn.Parameter(torch.randn(heads, h, dh) / math.sqrt(dh)) for n in self.memory_names}
        )
        self.out_norm = nn.RMSNorm(d, eps=1e-6)
        self.gate_proj = nn.Linear(d, d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self._compiled: Callable[..., tuple[Tensor, dict[str, FastWeights], Tensor]] | None = None

    # ----------------------------------------------------------------------------- state
    def init_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> TitansState:
        """Fresh state: the meta-learned initial memories expanded to ``[batch_size, ...]``."""
        mems = {}
        for n in self.memory_names:
            w1 = self.init_w1[n].to(device=device, dtype=dtype).expand(batch_size, -1, -1, -1)
            w2 = self.init_w2[n].to(device=device, dtype=dtype).expand(batch_size, -1, -1, -1)
            if self.config.momentum:
                mems[n] = FastWeights(w1, w2, torch.zeros_like(w1), torch.zeros_like(w2))
            else:
                mems[n] = FastWeights(w1, w2)
        d, w = self.config.d_model, self.config.conv_window
        dtype = dtype if dtype is not None else self.init_w1["mem"].dtype
        device = device if device is not None else self.init_w1["mem"].device
        tail = torch.zeros(batch_size, w - 1, d, device=device, dtype=dtype)
        return TitansState(mems, tail)

    # ----------------------------------------------------------------------------- pieces
    def _heads(self, x: Tensor) -> Tensor:  # [B, T, d] -> [B, H, T, d_head]
        b, t, _ = x.shape
        return x.view(b, t, self.config.n_heads, -1).transpose(1, 2)

    def _conv(self, x: Tensor, tail: Tensor) -> tuple[Tensor, Tensor]:
        """Causal depthwise conv over ``[tail, x]``; returns the output and the new tail."""
        xp = torch.cat([tail.to(x.dtype), x], dim=1)
        # = self.conv(xp.transpose(1, 2)).transpose(1, 2), as window products: the depthwise
        # Conv1d kernel is several times slower on short segments (CPU)
        windows = xp.unfold(1, self.config.conv_window, 1)  # [B, T, d, window]
        bias = self.conv.bias
        assert bias is not None
        out = (windows * self.conv.weight[:, 0]).sum(-1) + bias
        return out, xp[:, xp.shape[1] - tail.shape[1] :]

    def _gates(self, eta_logit: Tensor, alpha_logit: Tensor) -> tuple[Tensor, Tensor]:
        scale = 2.0 if self.config.negative_eigenvalues else self.config.eta_scale
        eta = scale * torch.sigmoid(eta_logit)
        alpha = torch.sigmoid(alpha_logit) if self.config.retention else torch.ones_like(eta)
        return eta, alpha

    def _readout(self, name: str, z: Tensor) -> Tensor:  # [B, H, C, dh] -> [B, H, C]
        out: Tensor = (z * self.readout_w[name][:, None, :]).sum(-1) + self.readout_b[name][:, None]
        return out

    def _write(
        self,
        state: FastWeights,
        k: Tensor,
        target: Tensor,
        eta: Tensor,
        alpha: Tensor,
        coef: ChunkCoefficients | None = None,
        read: tuple[Tensor, Tensor] | None = None,
    ) -> FastWeights:
        """One chunk's write (Eq. 88/91) with gradients at the snapshot ``state``; ``coef``: the
        chunk's precomputed state-independent part (:meth:`_coefficients`), ``read``: ``(M(k),
        W2 k)`` at ``state``, if already computed."""
        c = self.config
        if not c.writes:  # the static network: every chunk reads the initial state
            return state
        step = dgd_step_size(eta, k) if c.dgd and not c.negative_eigenvalues else eta
        dgd, beta, fused = c.dgd, c.momentum_beta, c.fused_backward

        def run() -> FastWeights:
            grads = memory_chunk_grads(state.w1, state.w2, k, target, c.activation, read=read)
            if coef is not None:
                return dgd_chunk_apply(state, k, grads, coef, beta=beta, fused=fused)
            if not c.parallel_update:
                return dgd_chunk_update_sequential(state, k, grads, step, alpha, dgd=dgd, beta=beta)
            return dgd_chunk_update(state, k, grads, step, alpha, dgd=dgd, beta=beta, fused=fused)

        if not c.first_order:
            return run()
        with torch.no_grad():  # nothing of the write is kept for backward
            new = run()
        return _straight_through(state, new)

    def _coefficients(
        self, k: Tensor, eta: Tensor, alpha: Tensor, size: int
    ) -> list[ChunkCoefficients | None]:
        """State-independent parts of every ``size``-token chunk's write, computed in one batch
        (``k [B, H, T, dh]``, ``eta, alpha [B, H, T]``); ``None`` entries: write the chunk the
        plain way (token-loop writes, or the trailing partial chunk)."""
        c, t = self.config, k.shape[2]
        n = t // size
        out: list[ChunkCoefficients | None] = [None] * -(-t // size)
        if not c.parallel_update or n == 0 or not c.writes:
            return out
        ks, es, als = (
            z[:, :, : n * size].reshape(*z.shape[:2], n, size, *z.shape[3:])
            for z in (k, eta, alpha)
        )
        beta = c.momentum_beta if c.momentum else 0.0
        with torch.no_grad() if c.first_order else contextlib.nullcontext():
            step = dgd_step_size(es, ks) if c.dgd and not c.negative_eigenvalues else es
            coef = dgd_chunk_coefficients(ks, step, als, dgd=c.dgd, beta=beta)
        out[:n] = coef.unbind(2)
        return out

    def _run_other(
        self, xm: Tensor, state: FastWeights
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, FastWeights]:
        """Run the stacked ``M_k, M_v, M_eta, M_alpha`` over ``xm [B, H, T, dh]``."""
        c = self.config
        cols: list[list[Tensor]] = [[], [], [], []]
        keep = None  # [4, 1, 1]: True for a static memory's slot of the stack
        if c.static:
            keep = torch.tensor([n in c.static for n in _OTHER], device=xm.device)[:, None, None]
        # split / unbind, not indexing: backward then joins the pieces once instead of adding a
        # zero-padded gradient per piece
        for xs in torch.split(xm[:, :, None], c.chunk_size_other, dim=3):  # [B, H, 1, C, dh]
            read = memory_forward(state.w1, state.w2, xs, c.activation)  # [B, H, 4, C, dh]
            k, v, eta_z, alpha_z = read.unbind(2)
            k = F.normalize(k, dim=-1)
            if c.normalize_v:  # bounded target inputs: breaks the v -> M_v(v) -> v feedback
                v = F.normalize(v, dim=-1)
            eta, alpha = self._gates(self._readout("eta", eta_z), self._readout("alpha", alpha_z))
            (v_hat, m_k), (_, z_k) = memory_forward_many(
                state.w1, state.w2, [v[:, :, None], k[:, :, None]], c.activation
            )
            new = self._write(
                state, k[:, :, None], v_hat, eta[:, :, None], alpha[:, :, None], read=(m_k, z_k)
            )
            state = new if keep is None else _keep_static(keep, state, new)
            for col, val in zip(cols, (k, v, eta, alpha), strict=True):
                col.append(val)
        k, v, eta, alpha = (torch.cat(col, dim=2) for col in cols)
        return k, v, eta, alpha, state

    def _static_projections(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        k = F.normalize(self._heads(self.proj["k"](xc)), dim=-1)
        v = self._heads(self.proj["v"](xc))
        logits = (self.proj[n](xc).transpose(1, 2) for n in ("eta", "alpha"))  # [B, H, T]
        eta, alpha = self._gates(*logits)
        return k, v, eta, alpha

    def _run_mem(
        self, q: Tensor, k: Tensor, v: Tensor, eta: Tensor, alpha: Tensor, state: FastWeights
    ) -> tuple[Tensor, FastWeights]:
        """Read ``M_mem`` at each chunk snapshot with ``q``, then write (k, v_hat, eta, alpha)."""
        c = self.config
        size, outs = c.chunk_size_memory, []
        coefs = self._coefficients(k, eta, alpha, size)
        chunks = zip(*(torch.split(z, size, dim=2) for z in (q, v, k, eta, alpha)), strict=True)
        for coef, (qs, vs, ks, etas, alphas) in zip(coefs, chunks, strict=True):
            read: tuple[Tensor, Tensor] | None = None
            if c.first_order:  # the write is detached: k and v stay out of the outer graph
                outs.append(memory_forward(state.w1, state.w2, qs, c.activation))
                target = (
                    memory_forward(state.w1, state.w2, vs, c.activation) if c.self_modifying else vs
                )
            else:  # one pass through the memory for the read (q), the self-generated target
                # (v) and the inner gradient's M(k), all at the same snapshot
                blocks = [qs, vs, ks] if c.self_modifying else [qs, ks]
                reads, pre = memory_forward_many(state.w1, state.w2, blocks, c.activation)
                outs.append(reads[0])
                target = reads[1] if c.self_modifying else vs
                read = (reads[-1], pre[-1])
            state = self._write(state, ks, target, etas, alphas, coef, read)
        return torch.cat(outs, dim=2), state

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: Tensor, state: TitansState | None = None) -> tuple[Tensor, TitansState]:
        """Mix ``x [B, T, d_model]``; returns ``y [B, T, d_model]`` and the state after ``x``."""
        c = self.config
        if x.ndim != 3 or x.shape[-1] != c.d_model:
            raise ValueError(f"expected x of shape [B, T, {c.d_model}], got {tuple(x.shape)}")
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        mix = self._mix
        if c.compile:
            if self._compiled is None:  # one compiled graph per input shape (dynamic=False)
                self._compiled = torch.compile(self._mix, dynamic=False)
            mix = self._compiled
        y, mems, tail = mix(x, state.memories, state.conv_tail)
        # the position stays outside the compiled call: an int there would recompile per call
        return y, TitansState(mems, tail, state.position + x.shape[1])

    def _mix(
        self, x: Tensor, memories: dict[str, FastWeights], conv_tail: Tensor
    ) -> tuple[Tensor, dict[str, FastWeights], Tensor]:
        """The mixer on tensors only: ``y``, the memories and the conv tail after ``x``."""
        c = self.config
        b, t, _ = x.shape
        xc, tail = self._conv(x, conv_tail)
        q = F.normalize(self._heads(self.proj["q"](xc)), dim=-1)
        mems = dict(memories)
        if c.self_modifying:
            xm = self._heads(self.proj["in"](xc))
            other = _stack([mems[n] for n in _OTHER])
            k, v, eta, alpha, other = self._run_other(xm, other)
            mems.update(zip(_OTHER, other.unbind(2), strict=True))
        else:
            k, v, eta, alpha = self._static_projections(xc)
        o, mems["mem"] = self._run_mem(q, k, v, eta, alpha, mems["mem"])
        o = o.transpose(1, 2).reshape(b, t, c.d_model)
        y = self.out_proj(self.out_norm(o) * F.silu(self.gate_proj(x)))
        return y, mems, tail

    def extra_repr(self) -> str:
        cfg: dict[str, Any] = {f.name: getattr(self.config, f.name) for f in fields(self.config)}
        return ", ".join(f"{k}={v}" for k, v in cfg.items())
