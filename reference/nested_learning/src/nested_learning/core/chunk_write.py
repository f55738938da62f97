"""The closed-form chunk write of :mod:`nested_learning.core.memory` with a hand-derived backward.

Autograd records the chunk write (:func:`~nested_learning.core.memory.dgd_chunk_apply`) as about
a hundred small nodes (broadcasts, views, products); the outer backward through every chunk's
write walks them all. Here the write is two :class:`torch.autograd.Function` s, one per weight
matrix, whose backward is a handful of batched matmuls (docs/ALGORITHMS.md, "The chunk write's
backward"). Values and gradients equal the autograd path (tested in float64 with ``gradcheck``).

Forward, for one chunk of ``C`` tokens (all vectors per token; ``diag`` scales rows):

* ``W1``: ``W1' = g W1 + c S1 - (diag(s) R)^T A`` and ``S1' = b^C S1 - (diag(q) R)^T A``.
* ``W2``: ``W2' = g W2 + c S2 + Z^T K`` with ``Z = -diag(d) E + diag(gl) F``,
  ``F = P rhs``, ``rhs = diag(gp) K W2^T + diag(cp) K S2^T - Dkk E`` (``P`` = the inverted
  triangular system ``solve``, ``E`` = ``diag(eta) U``), and ``S2' = b^C S2 - (diag(br) E)^T K``.

Backward (``G = dL/dW'``, ``H = dL/dS'``; every line is a transpose of a forward product)::

    dZ = K G^T                 dK = Z G - (diag(br) E) H + dKW W2 + dKS S2
    dF = diag(gl) dZ           dP = dF rhs^T            drhs = P^T dF
    dKW = diag(gp) drhs        dW2 = g G + dKW^T K      dDkk = -drhs E^T
    dE = -diag(d) dZ - Dkk^T drhs - diag(br) K H^T

The functions are differentiable once (a second backward raises): a model that differentiates
the writes' backward again (second-order CMS through the Titans mixer) writes with plain autograd
(``fused=False``; ``TitansConfig.fused_backward``, which HOPE sets from ``cms_first_order``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["w1_write", "w2_write"]


def _to(grad: Tensor | None, like: Tensor | None, needed: bool) -> Tensor | None:
    """``grad`` summed over the dims that ``like`` broadcast (None if not needed)."""
    if grad is None or like is None or not needed:
        return None
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)


def _mat(v: Tensor) -> Tensor:  # per-matrix scalar [...] -> [..., 1, 1]
    return v[..., None, None]


def _row(v: Tensor) -> Tensor:  # per-token scalar [..., C] -> [..., C, 1]
    return v[..., None]


class _W1Write(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        w1: Tensor,
        m1: Tensor | None,
        r: Tensor,
        a: Tensor,
        g: Tensor,
        c: Tensor | None,
        s: Tensor,
        q: Tensor | None,
        bn: float,
    ) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        sr = _row(s) * r  # [..., C, d]
        new_w1 = _mat(g) * w1 - sr.mT @ a
        new_m1 = qr = None
        if m1 is not None and c is not None and q is not None:
            new_w1 = new_w1 + _mat(c) * m1
            qr = _row(q) * r
            new_m1 = bn * m1 - qr.mT @ a
        ctx.bn = bn
        ctx.save_for_backward(w1, m1, r, a, g, c, s, q, sr, qr)
        return new_w1, new_m1

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        w1, m1, r, a, g, c, s, q, sr, qr = ctx.saved_tensors
        need = ctx.needs_input_grad
        dw1 = dm1 = dr = da = dg = dc = ds = dq = None
        if gw is not None:
            dw1, dg = _mat(g) * gw, (gw * w1).sum((-2, -1))
            d_sr = -(a @ gw.mT)  # [..., C, d]
            da, dr, ds = -(sr @ gw), _row(s) * d_sr, (d_sr * r).sum(-1)
            if m1 is not None:
                dm1, dc = _mat(c) * gw, (gw * m1).sum((-2, -1))
        if gm is not None and m1 is not None:
            dm1 = ctx.bn * gm if dm1 is None else dm1 + ctx.bn * gm
            d_qr = -(a @ gm.mT)
            da = -(qr @ gm) if da is None else da - qr @ gm
            dr = _row(q) * d_qr if dr is None else dr + _row(q) * d_qr
            dq = (d_qr * r).sum(-1)
        grads = (dw1, dm1, dr, da, dg, dc, ds, dq)
        likes = (w1, m1, r, a, g, c, s, q)
        return (*(_to(d, x, n) for d, x, n in zip(grads, likes, need, strict=False)), None)


def w1_write(
    w1: Tensor,
    m1: Tensor | None,
    r: Tensor,
    a: Tensor,
    g: Tensor,
    c: Tensor | None,
    s: Tensor,
    q: Tensor | None,
    bn: float,
) -> tuple[Tensor, Tensor | None]:
    """``(W1', S1')`` of one chunk (module docstring), with the hand-derived backward.

    Shapes: ``w1, m1 [..., d, h]``, ``r [..., C, d]``, ``a [..., C, h]``, per-matrix scalars
    ``g, c [...]``, per-token ``s, q [..., C]`` (all broadcast); ``bn = beta^C``. Without
    momentum ``m1, c, q`` are ``None`` and so is ``S1'``.
    """
    out: tuple[Tensor, Tensor | None] = _W1Write.apply(w1, m1, r, a, g, c, s, q, bn)
    return out


class _W2Write(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        w2: Tensor,
        m2: Tensor | None,
        k: Tensor,
        e: Tensor,
        g: Tensor,
        c: Tensor | None,
        d: Tensor,
        gl: Tensor,
        gp: Tensor,
        cp: Tensor | None,
        solve: Tensor | None,
        dkk: Tensor | None,
        br: Tensor | None,
        bn: float,
    ) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        z = -_row(d) * e  # [..., C, n]
        f = rhs = None
        if solve is not None and dkk is not None:
            rhs = _row(gp) * (k @ w2.mT) - dkk @ e
            if m2 is not None and cp is not None:
                rhs = rhs + _row(cp) * (k @ m2.mT)
            f = solve @ rhs
            z = z + _row(gl) * f
        new_w2 = _mat(g) * w2 + z.mT @ k
        new_m2 = None
        if m2 is not None and c is not None and br is not None:
            new_w2 = new_w2 + _mat(c) * m2
            new_m2 = bn * m2 - (_row(br) * e).mT @ k
        ctx.bn = bn
        ctx.save_for_backward(w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk, br, z, f, rhs)
        return new_w2, new_m2

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk, br, z, f, rhs = ctx.saved_tensors
        dw2 = dm2 = dk = de = dg = dc = dd = dgl = dgp = dcp = dsolve = ddkk = None
        if gm is not None and m2 is not None:
            bre = _row(br) * e
            dm2, dk, de = ctx.bn * gm, -(bre @ gm), -_row(br) * (k @ gm.mT)
        if gw is not None:
            dg, dw2 = (gw * w2).sum((-2, -1)), _mat(g) * gw
            if m2 is not None:
                dc = (gw * m2).sum((-2, -1))
                dm2 = _mat(c) * gw if dm2 is None else dm2 + _mat(c) * gw
            dz = k @ gw.mT  # [..., C, n]
            dk = z @ gw if dk is None else dk + z @ gw
            dd = -(dz * e).sum(-1)
            de_z = -_row(d) * dz
            de = de_z if de is None else de + de_z
            if f is not None and rhs is not None:
                df = _row(gl) * dz
                dgl, dsolve, drhs = (dz * f).sum(-1), df @ rhs.mT, solve.mT @ df
                dgp, ddkk, de = (drhs * (k @ w2.mT)).sum(-1), -(drhs @ e.mT), de - dkk.mT @ drhs
                dkw = _row(gp) * drhs  # d(K W2^T)
                dk, dw2 = dk + dkw @ w2, dw2 + dkw.mT @ k
                if m2 is not None and cp is not None:
                    dcp, dks = (drhs * (k @ m2.mT)).sum(-1), _row(cp) * drhs
                    dk, dm2 = dk + dks @ m2, dm2 + dks.mT @ k
        grads = (dw2, dm2, dk, de, dg, dc, dd, dgl, dgp, dcp, dsolve, ddkk)
        likes = (w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk)
        need = ctx.needs_input_grad
        return (*(_to(x, y, n) for x, y, n in zip(grads, likes, need, strict=False)), None, None)


def w2_write(
    w2: Tensor,
    m2: Tensor | None,
    k: Tensor,
    e: Tensor,
    g: Tensor,
    c: Tensor | None,
    d: Tensor,
    gl: Tensor,
    gp: Tensor,
    cp: Tensor | None,
    solve: Tensor | None,
    dkk: Tensor | None,
    br: Tensor | None,
    bn: float,
) -> tuple[Tensor, Tensor | None]:
    """``(W2', S2')`` of one chunk (module docstring), with the hand-derived backward.

    Shapes: ``w2, m2 [..., n, d]`` (``n`` rows: ``h``, or ``M*h`` for a folded stack),
    ``k [..., C, d]``, ``e = diag(eta) U [..., C, n]``, per-matrix ``g, c [...]``, per-token
    ``d, gl, gp, cp, br [..., C]``, ``solve, dkk [..., C, C]`` (``None`` without the DGD term);
    ``bn = beta^C``. Without momentum ``m2, c, cp, br`` are ``None`` and so is ``S2'``.
    """
    out: tuple[Tensor, Tensor | None] = _W2Write.apply(
        w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk, br, bn
    )
    return out
