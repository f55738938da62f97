"""Residual-MLP fast memory ``M(z) = z + W1 sigma(W2 z)`` and its DGD write (arXiv Eq. 88-92).

Everything here is functional: the fast weights are explicit tensors, per sequence and per head,

* ``W1``: ``[..., d, h]`` (output side), ``W2``: ``[..., h, d]`` (input side),

with any leading dims (typically ``[B, H]``; a stack of memories adds one more). Inputs are
``[..., T, d]``. Nothing materialises a ``d x d`` matrix or a stack of per-token gradient
matrices: the per-token inner gradients are rank-1 and kept as factors (spec §7.3, §9.2).

Write rule for one token (Eq. 88 applied to a 2-layer MLP; spec §7.3 choice)::

    W2 <- W2 (alpha_t I - eta_t k_t k_t^T) - eta_t U_t k_t^T   # DGD decay on the matrix that sees k
    W1 <- alpha_t W1 - eta_t R_t A_t^T                          # output side: gate only

where ``R, A, U`` are the rank-1 factors of the inner gradient taken at the chunk snapshot
(:func:`memory_chunk_grads`). ``eta_t`` is the step actually applied: the Titans mixer passes the
exact DGD step ``eta' = eta / (1 + eta ||k||^2)`` (= ``eta/(1+eta)`` since ``k`` is
L2-normalised), see :mod:`nested_learning.core.titans`.

With Titans-style momentum (spec §7.5 choice, "w/o Momentum" ablation) the gradient term goes
through an EMA and the DGD decay stays on the weights::

    S1 <- beta S1 - (1-beta) eta_t R_t A_t^T,   W1 <- alpha_t W1 + S1
    S2 <- beta S2 - (1-beta) eta_t U_t k_t^T,   W2 <- W2 (alpha_t I - eta_t k_t k_t^T) + S2

:func:`dgd_chunk_update_sequential` applies this token by token (O(C h d)); :func:`dgd_chunk_update`
gives the same chunk-end state in closed form: a gated accumulation (one matmul with decay
weights) for ``W1``, and for ``W2`` a delta-rule (WY/UT-style) form that needs one ``C x C``
unit-lower-triangular solve per chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .chunk_write import W1Inputs, W2Inputs, w1_write, w2_write

__all__ = [
    "ACTIVATIONS",
    "ChunkCoefficients",
    "FastWeights",
    "MemoryGrads",
    "dgd_chunk_apply",
    "dgd_chunk_coefficients",
    "dgd_chunk_update",
    "dgd_chunk_update_sequential",
    "matrix_memory_dgd_dot",
    "memory_chunk_grads",
    "memory_forward",
    "memory_forward_many",
]

ActFn = Callable[[Tensor], Tensor]


def _silu_prime(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def _gelu_prime(z: Tensor) -> Tensor:  # exact (erf) GELU: Phi(z) + z phi(z)
    cdf = 0.5 * (1 + torch.erf(z * 0.5**0.5))
    pdf = torch.exp(-0.5 * z.square()) * (2 * math.pi) ** -0.5
    out: Tensor = cdf + z * pdf
    return out


#: name -> (sigma, sigma'); the derivative is needed for the hand-written inner gradient.
ACTIVATIONS: dict[str, tuple[ActFn, ActFn]] = {
    "silu": (F.silu, _silu_prime),
    "gelu": (F.gelu, _gelu_prime),
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z).square()),
    "identity": (lambda z: z, torch.ones_like),
}


class FastWeights(NamedTuple):
    """State of one (stack of) residual-MLP memories; momenta are ``None`` without momentum."""

    w1: Tensor  # [..., d, h]
    w2: Tensor  # [..., h, d]
    m1: Tensor | None = None  # momentum of w1, [..., d, h]
    m2: Tensor | None = None  # momentum of w2, [..., h, d]

    def map(self, fn: Callable[[Tensor], Tensor]) -> FastWeights:
        """Apply ``fn`` to every tensor; absent momenta stay ``None``."""
        m1 = None if self.m1 is None else fn(self.m1)
        m2 = None if self.m2 is None else fn(self.m2)
        return FastWeights(fn(self.w1), fn(self.w2), m1, m2)

    def unbind(self, dim: int) -> list[FastWeights]:
        """Split a stack of memories along ``dim`` (unbind: backward stacks the pieces' gradients
        once; an index per memory would give each a zero-filled gradient of the whole stack)."""
        w1, w2 = self.w1.unbind(dim), self.w2.unbind(dim)
        none = (None,) * len(w1)
        m1 = none if self.m1 is None else self.m1.unbind(dim)
        m2 = none if self.m2 is None else self.m2.unbind(dim)
        return [FastWeights(*t) for t in zip(w1, w2, m1, m2, strict=True)]


class MemoryGrads(NamedTuple):
    """Rank-1 factors of the inner gradient: ``G1_t = R_t A_t^T``, ``G2_t = U_t k_t^T``."""

    r: Tensor  # dLoss/dM(k)         [..., C, d]
    a: Tensor  # sigma(W2 k)          [..., C, h]
    u: Tensor  # dLoss/d(W2 k)        [..., C, h]


def memory_forward(w1: Tensor, w2: Tensor, z: Tensor, activation: str = "silu") -> Tensor:
    """Read the memory: ``M(z) = z + W1 sigma(W2 z)`` (Eq. 89/91), batched over tokens.

    Shapes: ``w1 [..., d, h]``, ``w2 [..., h, d]``, ``z [..., T, d]`` -> ``[..., T, d]``
    (leading dims broadcast).
    """
    act = ACTIVATIONS[activation][0]
    return z + act(z @ w2.mT) @ w1.mT


def memory_forward_many(
    w1: Tensor, w2: Tensor, zs: Sequence[Tensor], activation: str = "silu"
) -> tuple[list[Tensor], list[Tensor]]:
    """:func:`memory_forward` of several token blocks in one pass (stacked on the token axis:
    two matmuls in all instead of two per block).

    Shapes: ``zs[i] [..., T_i, d]`` with equal leading dims. Returns the reads ``M(z_i)`` and
    the pre-activations ``W2 z_i`` (``[..., T_i, h]``, reused by :func:`memory_chunk_grads`).
    """
    act = ACTIVATIONS[activation][0]
    sizes = [z.shape[-2] for z in zs]
    z = torch.cat(list(zs), dim=-2)
    pre = z @ w2.mT
    out = z + act(pre) @ w1.mT
    return list(torch.split(out, sizes, dim=-2)), list(torch.split(pre, sizes, dim=-2))


def memory_chunk_grads(
    w1: Tensor,
    w2: Tensor,
    k: Tensor,
    v_hat: Tensor,
    activation: str = "silu",
    *,
    read: tuple[Tensor, Tensor] | None = None,
) -> MemoryGrads:
    """Per-token gradients of ``||M(k_t) - v_hat_t||^2`` at one state, as rank-1 factors.

    With ``z = W2 k``, ``a = sigma(z)``, ``r = 2 (M(k) - v_hat) = 2 (k + W1 a - v_hat)``::

        dL/dW1 = r a^T,   dL/dW2 = (sigma'(z) * W1^T r) k^T        (spec §7.3)

    ``v_hat`` is a constant target for this derivative (no ``dM(v)/dW`` term: the stop-gradient
    that prevents the trivial collapse of self-generated targets, spec §7.4).

    Shapes: ``w1 [..., d, h]``, ``w2 [..., h, d]``, ``k, v_hat [..., C, d]``; returns
    ``r [..., C, d]``, ``a, u [..., C, h]``. ``read``: ``(M(k), z)`` if already computed (e.g. by
    :func:`memory_forward_many` together with other reads at the same state).
    """
    act, act_prime = ACTIVATIONS[activation]
    if read is None:
        z = k @ w2.mT
        m_k = k + act(z) @ w1.mT
    else:
        m_k, z = read
    r = 2 * (m_k - v_hat)
    u = act_prime(z) * (r @ w1)
    return MemoryGrads(r, act(z), u)


def dgd_chunk_update_sequential(
    state: FastWeights,
    k: Tensor,
    grads: MemoryGrads,
    eta: Tensor,
    alpha: Tensor,
    *,
    dgd: bool = True,
    beta: float = 0.0,
) -> FastWeights:
    """Apply a chunk of DGD-with-retention writes token by token (rank-1, module docstring).

    Args:
        state: fast weights at the chunk start (``m1``/``m2`` set iff momentum is used).
        k: keys ``[..., C, d]``; grads: factors from :func:`memory_chunk_grads` at the snapshot.
        eta: applied step sizes ``[..., C]``; alpha: retention gates ``[..., C]``.
        dgd: include the DGD decay ``-eta (W2 k) k^T``; ``False`` gives GD with retention.
        beta: momentum coefficient (used only when ``state.m1`` is not ``None``).

    Returns:
        The chunk-end state. Costs O(C h d) per chunk and never forms a ``d x d`` matrix.
    """
    w1, w2, m1, m2 = state
    r, a, u = _ema_scaled(grads, beta, m1 is not None and m2 is not None)
    for t in range(k.shape[-2]):
        kt, e, al = k[..., t, :], eta[..., t, None, None], alpha[..., t, None, None]
        g1 = r[..., t, :, None] * a[..., t, None, :]
        g2 = u[..., t, :, None] * kt[..., None, :]
        decay = (w2 @ kt[..., None]) * kt[..., None, :] if dgd else torch.zeros_like(w2)
        if m1 is None or m2 is None:
            w1 = al * w1 - e * g1
            w2 = al * w2 - e * (decay + g2)
        else:
            m1, m2 = beta * m1 - e * g1, beta * m2 - e * g2
            w1 = al * w1 + m1
            w2 = al * w2 - e * decay + m2
    return FastWeights(w1, w2, m1, m2)


def _ema_scaled(grads: MemoryGrads, beta: float, momentum: bool) -> MemoryGrads:
    """Momentum as an exponential moving average: the gradient enters ``S`` scaled by ``1 - beta``.

    ``S <- beta S - (1 - beta) eta G`` keeps the steady-state step equal to the plain DGD step, so
    DGD's guarantee ``eta' ||k||^2 < 1`` still bounds it. The undamped Titans form
    ``S <- beta S - eta G`` multiplies the step by up to ``1 / (1 - beta)`` (10x at 0.9): with the
    memories' self-generated targets that made the fast weights grow chunk after chunk until they
    overflowed (seen as NaN after 3-5 chunks on ordinary text).
    """
    if not momentum:
        return grads
    r, a, u = grads
    return MemoryGrads((1.0 - beta) * r, a, (1.0 - beta) * u)


def _tril(n: int, like: Tensor, diagonal: int = 0) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=like.device).tril(diagonal)


def _shift_rows(m: Tensor) -> Tensor:
    """Row ``t`` of the result is row ``t-1`` of ``m [..., C, C]`` (zeros in row 0)."""
    return F.pad(m[..., :-1, :], (0, 0, 1, 0))


def _shift_vec(v: Tensor) -> Tensor:
    """Entry ``t`` of the result is entry ``t-1`` of ``v [..., C]`` (zero at 0)."""
    return F.pad(v[..., :-1], (1, 0))


class ChunkCoefficients(NamedTuple):
    """What a chunk's closed-form write needs that does not depend on the memory's state.

    Shapes for ``C`` tokens and leading dims ``...`` (a stack of memories sharing ``k`` has none
    for the stack). Computed once for many chunks at a time (:func:`dgd_chunk_coefficients`),
    then applied chunk by chunk (:func:`dgd_chunk_apply`); see :func:`dgd_chunk_update` for the
    notation.
    """

    eta: Tensor  # applied step sizes                       [..., C]
    g_last: Tensor  # g_C = prod_s alpha_s                   [...]
    d_last: Tensor  # D[C, i]                                [..., C]
    c_last: Tensor  # c_C (0 without momentum)               [...]
    gam_last: Tensor  # Gam[C, i]                            [..., C]
    g_prev: Tensor  # g_{t-1} (1 at t = 1)                   [..., C]
    c_prev: Tensor  # c_{t-1}                                [..., C]
    solve: Tensor | None  # (I + diag(eta)(Gam_prev o KK^T))^-1 diag(-eta)   [..., C, C]
    d_kk: Tensor | None  # D_prev o K K^T                   [..., C, C]

    def unbind(self, dim: int) -> list[ChunkCoefficients]:
        """Split a batch of chunks along ``dim`` (unbind: backward stacks the gradients once,
        instead of a zero-padded gradient per chunk as indexing would)."""

        n = self.eta.shape[dim]
        fields = [[None] * n if f is None else f.unbind(dim) for f in self]
        return [ChunkCoefficients._make(chunk) for chunk in zip(*fields, strict=True)]


def dgd_chunk_coefficients(
    k: Tensor, eta: Tensor, alpha: Tensor, *, dgd: bool = True, beta: float = 0.0
) -> ChunkCoefficients:
    """The state-independent part of :func:`dgd_chunk_update` (same notation, any leading dims).

    Shapes: ``k [..., C, d]``, ``eta, alpha [..., C]``. ``beta`` is the momentum coefficient
    (0 without momentum). The ``C x C`` triangular system is inverted here, once for every chunk
    of the call, so a chunk's write needs only matmuls with its state.
    """
    n = k.shape[-2]
    # log-space decays; the clamp keeps alpha = 0 (saturated sigmoid) from giving -inf - -inf
    log_g = torch.log(alpha.clamp_min(torch.finfo(alpha.dtype).tiny)).cumsum(-1)  # [..., C]
    lower = _tril(n, k)
    gam = torch.exp((log_g[..., :, None] - log_g[..., None, :]).masked_fill(~lower, -torch.inf))
    if beta:
        idx = torch.arange(n, device=k.device, dtype=k.dtype)
        bm = torch.where(lower, beta ** (idx[:, None] - idx[None, :]).clamp(min=0), 0.0)
        d_mat = gam @ bm
        c = gam @ beta ** (idx + 1)
    else:
        d_mat, c = gam, torch.zeros_like(log_g)
    solve = d_kk = None
    if dgd:
        kk = k @ k.mT
        eye = torch.eye(n, dtype=k.dtype, device=k.device)
        tri = eye + eta[..., None] * (_shift_rows(gam) * kk)
        solve = torch.linalg.solve_triangular(
            tri, torch.diag_embed(-eta), upper=False, unitriangular=True
        )
        d_kk = _shift_rows(d_mat) * kk
    return ChunkCoefficients(
        eta=eta,
        g_last=torch.exp(log_g[..., -1]),
        d_last=d_mat[..., -1, :],
        c_last=c[..., -1],
        gam_last=gam[..., -1, :],
        g_prev=torch.exp(_shift_vec(log_g)),
        c_prev=_shift_vec(c),
        solve=solve,
        d_kk=d_kk,
    )


def dgd_chunk_update(
    state: FastWeights,
    k: Tensor,
    grads: MemoryGrads,
    eta: Tensor,
    alpha: Tensor,
    *,
    dgd: bool = True,
    beta: float = 0.0,
    fused: bool = True,
) -> FastWeights:
    """Closed-form chunk-end state of :func:`dgd_chunk_update_sequential` (same arguments;
    ``fused`` as in :func:`dgd_chunk_apply`).

    Notation (tokens ``t = 1..C``): ``g_t = prod_{s<=t} alpha_s``, ``Gam[t, j] = g_t / g_j``
    (``j <= t``), ``D = Gam @ Bm`` with ``Bm[j, i] = beta^(j-i)`` (``i <= j``) and
    ``c = Gam @ beta^j``.

    * ``W1_C = g_C W1_0 + c_C S1_0 - sum_i D[C, i] eta_i R_i A_i^T``  (one matmul).
    * ``W2_t = X_t + sum_{i<=t} Gam[t, i] f_i k_i^T`` where ``X_t`` is the same gated momentum
      accumulation as ``W1`` and ``f_t = -eta_t W2_{t-1} k_t`` is the DGD decay vector. Writing
      ``W2_{t-1} k_t`` out gives the ``C x C`` unit lower-triangular system::

          (I + diag(eta) (Gam_prev o K K^T)) F = -diag(eta) [diag(g_prev) K W2_0^T
                                + diag(c_prev) K S2_0^T - (D_prev o K K^T)(eta o U)]

      (``_prev`` = shifted one token back). All decay ratios are ``<= 1``: no ``1/g`` blow-up.

    Without momentum ``beta = 0`` and ``S_0 = 0``, so ``D = Gam`` and ``c = 0``.
    Shapes as in :func:`dgd_chunk_update_sequential`; leading dims broadcast (e.g. one ``k`` shared
    by a stack of memories). Equals :func:`dgd_chunk_apply` of :func:`dgd_chunk_coefficients`.
    """
    momentum = state.m1 is not None and state.m2 is not None
    fold = _folds(state, k, eta, alpha)
    if fold:
        k, eta, alpha = k.squeeze(-3), eta.squeeze(-2), alpha.squeeze(-2)
    coef = dgd_chunk_coefficients(k, eta, alpha, dgd=dgd, beta=beta if momentum else 0.0)
    return dgd_chunk_apply(state, k, grads, coef, beta=beta, fold=fold, fused=fused)


def _folds(state: FastWeights, k: Tensor, eta: Tensor, alpha: Tensor) -> bool:
    """A stack of memories sharing k, eta, alpha (size-1 dim -3 of k) is one delta-rule system
    for W2: stack their rows (``[..., M, h, d] -> [..., M*h, d]``), no broadcast copies."""
    w2 = state.w2
    return (
        k.ndim == w2.ndim == eta.ndim + 1 == alpha.ndim + 1
        and k.shape[-3] == 1 < w2.shape[-3]
        and eta.shape[-2] == alpha.shape[-2] == 1
    )


def dgd_chunk_apply(
    state: FastWeights,
    k: Tensor,
    grads: MemoryGrads,
    coef: ChunkCoefficients,
    *,
    beta: float = 0.0,
    fold: bool = False,
    fused: bool = True,
) -> FastWeights:
    """Chunk-end state from the chunk-start ``state`` and precomputed ``coef`` (see
    :func:`dgd_chunk_update`). ``fold``: ``state`` is a stack ``[..., M, h, d]`` of memories that
    share ``k [..., C, d]`` and ``coef`` (leading dims without the stack).

    ``fused``: when a graph is recorded, write through :mod:`nested_learning.core.chunk_write`
    (same values, a hand-derived backward: two autograd nodes instead of dozens, but
    differentiable once); ``False``: plain autograd, which can be differentiated twice.
    """
    w1, w2, m1, m2 = state
    momentum = m1 is not None and m2 is not None
    r, a, u = _ema_scaled(grads, beta, momentum)
    h, n = w2.shape[-2], k.shape[-2]

    def per_mem(v: Tensor) -> Tensor:  # [..., C] -> broadcastable against [..., M, C]
        return v.unsqueeze(-2) if fold else v

    def mat(x: Tensor) -> Tensor:  # [..., M, h, d] -> [..., M*h, d]
        return x.flatten(-3, -2) if fold else x

    def unmat(x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-2], -1, h, x.shape[-1]) if fold else x

    eta = coef.eta
    b_rev = beta ** torch.arange(n - 1, -1, -1, device=k.device, dtype=k.dtype)
    c_last, c_prev = (coef.c_last, coef.c_prev) if momentum else (None, None)
    # e = diag(eta) U with the stack's rows side by side: [..., C, (M*)h]
    e = per_mem(eta)[..., None] * u
    e = e.movedim(-3, -2).flatten(-2) if fold else e
    x1 = W1Inputs(
        w1,
        m1,
        r,
        a,
        coef.g_last.unsqueeze(-1) if fold else coef.g_last,
        None if c_last is None else (c_last.unsqueeze(-1) if fold else c_last),
        per_mem(coef.d_last * eta),
        per_mem(b_rev * eta) if momentum else None,
    )
    x2 = W2Inputs(
        mat(w2),
        None if m2 is None else mat(m2),
        k,
        e,
        coef.g_last,
        c_last,
        coef.d_last,
        coef.gam_last,
        coef.g_prev,
        c_prev,
        coef.solve,
        coef.d_kk,
        b_rev if momentum else None,
    )
    new_w1, new_m1 = w1_write(x1, beta**n, fused)
    new_w2, new_m2 = w2_write(x2, beta**n, fused)
    return FastWeights(new_w1, unmat(new_w2), new_m1, None if new_m2 is None else unmat(new_m2))


def matrix_memory_dgd_dot(s: Tensor, k: Tensor, v: Tensor, eta: Tensor, alpha: Tensor) -> Tensor:
    """Linear matrix memory, dot-product objective, DGD with retention (Eq. 92, sign fixed).

    ``S_t = S_{t-1} (alpha_t I - eta_t k_t k_t^T) + eta_t v_t k_t^T``, applied in rank-1 form
    ``S <- alpha S - eta (S k - v) k^T``. (Eq. 92 prints ``- eta v k^T``; the gradient of
    ``-<S k, v>`` is ``-v k^T`` so GD adds it.) This is the gated delta rule
    ``S_t = alpha_t S_{t-1} (I - b_t k k^T) + b_t w_t k^T`` with ``b_t = eta_t / alpha_t`` **and**
    value ``w_t = alpha_t v_t`` (spec §7.2 states ``b = eta/alpha`` but drops the value scaling,
    which is only harmless when ``alpha = 1``).

    Shapes: ``s [..., d_v, d_k]``, ``k [..., T, d_k]``, ``v [..., T, d_v]``,
    ``eta, alpha [..., T]``; returns the final state ``[..., d_v, d_k]``.
    """
    for t in range(k.shape[-2]):
        kt, e, al = k[..., t, :], eta[..., t, None, None], alpha[..., t, None, None]
        s = al * s - e * ((s @ kt[..., None]) - v[..., t, :, None]) * kt[..., None, :]
    return s
