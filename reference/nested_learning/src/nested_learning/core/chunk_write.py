"""The closed-form chunk write of :mod:`nested_learning.core.memory` with a hand-derived backward.

Autograd records the chunk write (:func:`~nested_learning.core.memory.dgd_chunk_apply`) as
dozens of small nodes (broadcasts, views, products; a 1-layer small HOPE step at 512 x 2 has
11.3k nodes with them, 7.4k with this module: about 80 fewer per write); the outer backward
through every chunk's write walks them all. Here the write is two
:class:`torch.autograd.Function` s, one per weight matrix, whose backward is a handful of batched
matmuls (docs/ALGORITHMS.md, "The chunk write's backward"). Values and gradients equal the
autograd path (tested in float64 with ``gradcheck``).

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

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["W1Inputs", "W2Inputs", "w1_write", "w2_write"]


class W1Inputs(NamedTuple):
    """The ``W1`` write's inputs (module docstring); the momentum fields are ``None`` without it.

    Shapes (all broadcast): ``w1, m1 [..., d, h]``, ``r [..., C, d]``, ``a [..., C, h]``,
    per-matrix ``g, c [...]``, per-token ``s, q [..., C]``.
    """

    w1: Tensor
    m1: Tensor | None
    r: Tensor
    a: Tensor
    g: Tensor
    c: Tensor | None
    s: Tensor
    q: Tensor | None


class W2Inputs(NamedTuple):
    """The ``W2`` write's inputs (module docstring); momentum fields ``None`` without it,
    ``solve, dkk`` ``None`` without the DGD term.

    Shapes: ``w2, m2 [..., n, d]`` (``n`` rows: ``h``, or ``M*h`` for a folded stack),
    ``k [..., C, d]``, ``e = diag(eta) U [..., C, n]``, per-matrix ``g, c [...]``, per-token
    ``d, gl, gp, cp [..., C]``, ``solve, dkk [..., C, C]``, ``br [C]`` (a constant).
    """

    w2: Tensor
    m2: Tensor | None
    k: Tensor
    e: Tensor
    g: Tensor
    c: Tensor | None
    d: Tensor
    gl: Tensor
    gp: Tensor
    cp: Tensor | None
    solve: Tensor | None
    dkk: Tensor | None
    br: Tensor | None


def _to(grad: Tensor | None, like: Tensor | None, needed: bool) -> Tensor | None:
    """``grad`` summed over the dims that ``like`` broadcast (None if not needed)."""
    if grad is None or like is None or not needed:
        return None
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)


def _mat(v: Tensor) -> Tensor:  # per-matrix scalar [...] -> [..., 1, 1]
    return v[..., None, None]


def _row(v: Tensor) -> Tensor:  # per-token scalar [..., C] -> [..., C, 1]
    return v[..., None]


def _w1_forward(x: W1Inputs, bn: float) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
    """``(W1', S1')`` and the products the backward reuses (``diag(s) R``, ``diag(q) R``)."""
    sr = _row(x.s) * x.r  # [..., C, d]
    new_w1 = _mat(x.g) * x.w1 - sr.mT @ x.a
    if x.m1 is None or x.c is None or x.q is None:
        return new_w1, None, sr, None
    qr = _row(x.q) * x.r
    return new_w1 + _mat(x.c) * x.m1, bn * x.m1 - qr.mT @ x.a, sr, qr


def _w2_forward(
    x: W2Inputs, bn: float
) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:
    """``(W2', S2')`` and the products the backward reuses (``Z``, ``F``, ``rhs``)."""
    z = -_row(x.d) * x.e  # [..., C, n]
    f = rhs = None
    if x.solve is not None and x.dkk is not None:
        rhs = _row(x.gp) * (x.k @ x.w2.mT) - x.dkk @ x.e
        if x.m2 is not None and x.cp is not None:
            rhs = rhs + _row(x.cp) * (x.k @ x.m2.mT)
        f = x.solve @ rhs
        z = z + _row(x.gl) * f
    new_w2 = _mat(x.g) * x.w2 + z.mT @ x.k
    if x.m2 is None or x.c is None or x.br is None:
        return new_w2, None, z, f, rhs
    new_m2 = bn * x.m2 - (_row(x.br) * x.e).mT @ x.k
    return new_w2 + _mat(x.c) * x.m2, new_m2, z, f, rhs


class _W1Write(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bn: float, *inputs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        new_w1, new_m1, sr, qr = _w1_forward(W1Inputs(*inputs), bn)  # type: ignore[arg-type]
        ctx.bn = bn
        ctx.save_for_backward(*inputs, sr, qr)
        return new_w1, new_m1

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        *inputs, sr, qr = ctx.saved_tensors
        w1, m1, r, a, g, c, s, q = inputs
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
        need = ctx.needs_input_grad[1:]
        return (None, *(_to(d, x, n) for d, x, n in zip(grads, inputs, need, strict=True)))


class _W2Write(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bn: float, *inputs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        new_w2, new_m2, z, f, rhs = _w2_forward(W2Inputs(*inputs), bn)  # type: ignore[arg-type]
        ctx.bn = bn
        ctx.save_for_backward(*inputs, z, f, rhs)
        return new_w2, new_m2

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        *inputs, z, f, rhs = ctx.saved_tensors
        w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk, br = inputs
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
        grads = (dw2, dm2, dk, de, dg, dc, dd, dgl, dgp, dcp, dsolve, ddkk, None)  # br: constant
        need = ctx.needs_input_grad[1:]
        return (None, *(_to(x, y, n) for x, y, n in zip(grads, inputs, need, strict=True)))


def w1_write(x: W1Inputs, bn: float, fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(W1', S1')`` of one chunk (module docstring); ``bn = beta^C``. ``fused`` (and a graph
    being recorded): the hand-derived backward; else plain autograd. ``S1'`` is ``None``
    without momentum."""
    if fused and torch.is_grad_enabled():
        out: tuple[Tensor, Tensor | None] = _W1Write.apply(bn, *x)
        return out
    return _w1_forward(x, bn)[:2]


def w2_write(x: W2Inputs, bn: float, fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(W2', S2')`` of one chunk, as :func:`w1_write`."""
    if fused and torch.is_grad_enabled():
        out: tuple[Tensor, Tensor | None] = _W2Write.apply(bn, *x)
        return out
    return _w2_forward(x, bn)[:2]
