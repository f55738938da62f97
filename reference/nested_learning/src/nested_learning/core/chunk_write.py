"""The closed-form chunk write of :mod:`nested_learning.core.memory` with a hand-derived backward.

Autograd records the chunk write (:func:`~nested_learning.core.memory.dgd_chunk_apply`) as
dozens of small nodes (broadcasts, views, products; a 1-layer small HOPE step at 512 x 2 has
10.0k nodes with them, 7.2k with this module: about 58 fewer per write); the outer backward
through every chunk's write walks them all. Here the write is two
:class:`torch.autograd.Function` s, one per weight matrix, whose backward is a handful of batched
matmuls (docs/ALGORITHMS.md, "The chunk write's backward"). Values and gradients equal the
autograd path (tested in float64 with ``gradcheck``). Both paths fold the leading dims into one
batch dim first (:class:`_Fold`), so each product is a single ``bmm`` / ``baddbmm`` call.

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

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

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


_Inputs = TypeVar("_Inputs", W1Inputs, W2Inputs)

#: how each input folds (:class:`_Fold`): a matrix, a per-token scalar, a per-matrix scalar
_W1_KINDS = ("mat",) * 4 + ("one",) * 2 + ("row",) * 2  # w1 m1 r a | g c | s q
_W2_KINDS = ("mat",) * 4 + ("one",) * 2 + ("row",) * 4 + ("mat", "mat", "row")  # as W2Inputs
_CORE = {"mat": 2, "row": 1, "one": 0}  # trailing dims that are not leading dims


class _Fold:
    """The write's leading dims ``lead`` (all inputs broadcast to them) folded into one batch dim
    ``N``: every product is then one ``bmm`` and every ``x + y @ z`` one ``baddbmm``, instead of
    the expand / reshape / bmm / view chain that ``matmul`` issues for each product of 4-D or
    5-D operands. Matrices fold to ``[N, a, b]``, per-token scalars ``[..., C]`` to ``[N, C, 1]``,
    per-matrix scalars ``[...]`` to ``[N, 1, 1]``."""

    def __init__(self, x: W1Inputs | W2Inputs) -> None:
        self.kinds = _W1_KINDS if isinstance(x, W1Inputs) else _W2_KINDS
        shapes = [
            t.shape[: t.ndim - _CORE[k]]
            for t, k in zip(x, self.kinds, strict=True)
            if t is not None
        ]
        self.lead: torch.Size = torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call]

    def fold(self, t: Tensor | None, kind: str) -> Tensor | None:
        if t is None:
            return None
        m = t if kind == "mat" else t.unsqueeze(-1) if kind == "row" else t.view(*t.shape, 1, 1)
        if m.shape[:-2] != self.lead:
            m = m.expand(*self.lead, *m.shape[-2:])
        return m.reshape(-1, *m.shape[-2:])

    def fold_all(self, x: _Inputs) -> _Inputs:
        return type(x)._make(self.fold(t, k) for t, k in zip(x, self.kinds, strict=True))

    def unfold(self, t: Tensor | None) -> Tensor | None:  # an output [N, a, b] -> [*lead, a, b]
        return None if t is None else t.reshape(*self.lead, *t.shape[-2:])

    def grads(
        self,
        grads: tuple[Tensor | None, ...],
        shapes: list[torch.Size | None],
        needed: tuple[bool, ...],
    ) -> list[Tensor | None]:
        """Folded gradients back to each input's ``shapes`` (summed over the dims it broadcast)."""
        out: list[Tensor | None] = []
        for g, shape, kind, need in zip(grads, shapes, self.kinds, needed, strict=True):
            if g is None or shape is None or not need:
                out.append(None)
                continue
            g = g.reshape((*self.lead, *shape[len(shape) - _CORE[kind] :]))
            out.append(g if g.shape == shape else g.sum_to_size(shape))
        return out


def _rowsum(x: Tensor, y: Tensor) -> Tensor:  # per-token sum of x * y: [N, C, m] -> [N, C, 1]
    return (x * y).sum(-1, keepdim=True)


def _matsum(x: Tensor, y: Tensor) -> Tensor:  # per-matrix sum of x * y: [N, a, b] -> [N, 1, 1]
    return (x * y).sum((-2, -1), keepdim=True)


_Out = tuple[Tensor | None, ...]  # (W', S', then the products the backward reuses)


def _w1_forward(x: W1Inputs, bn: float) -> _Out:
    """``(W1', S1')`` on folded inputs and the products the backward reuses (``diag(s) R``,
    ``diag(q) R``)."""
    sr = x.s * x.r  # [N, C, d]
    base = x.g * x.w1
    if x.m1 is None or x.c is None or x.q is None:
        return torch.baddbmm(base, sr.mT, x.a, alpha=-1), None, sr, None
    new_w1 = torch.baddbmm(torch.addcmul(base, x.c, x.m1), sr.mT, x.a, alpha=-1)
    qr = x.q * x.r
    return new_w1, torch.baddbmm(x.m1, qr.mT, x.a, beta=bn, alpha=-1), sr, qr


def _w2_forward(x: W2Inputs, bn: float) -> _Out:
    """``(W2', S2')`` on folded inputs and the products the backward reuses (``Z``, ``F``,
    ``rhs``, ``K W2^T``, ``K S2^T``)."""
    z = -x.d * x.e  # [N, C, n]
    f = rhs = kw = km = None
    if x.solve is not None and x.dkk is not None:
        kw = torch.bmm(x.k, x.w2.mT)
        rhs = torch.baddbmm(x.gp * kw, x.dkk, x.e, alpha=-1)
        if x.m2 is not None and x.cp is not None:
            km = torch.bmm(x.k, x.m2.mT)
            rhs = torch.addcmul(rhs, x.cp, km)
        f = torch.bmm(x.solve, rhs)
        z = torch.addcmul(z, x.gl, f)
    base = x.g * x.w2
    if x.m2 is None or x.c is None or x.br is None:
        return torch.baddbmm(base, z.mT, x.k), None, z, f, rhs, kw, km
    new_w2 = torch.baddbmm(torch.addcmul(base, x.c, x.m2), z.mT, x.k)
    new_m2 = torch.baddbmm(x.m2, (x.br * x.e).mT, x.k, beta=bn, alpha=-1)
    return new_w2, new_m2, z, f, rhs, kw, km


def _apply(
    x: _Inputs, bn: float, forward: Callable[[_Inputs, float], _Out], ctx: Any = None
) -> tuple[Tensor, Tensor | None]:
    """``(W', S')`` of ``forward`` on the folded ``x``; with ``ctx`` (an autograd.Function's),
    also save what its backward needs."""
    fold = _Fold(x)
    folded = fold.fold_all(x)
    new_w, new_m, *reused = forward(folded, bn)
    if ctx is not None:
        ctx.bn, ctx.fold, ctx.shapes = bn, fold, [None if t is None else t.shape for t in x]
        ctx.save_for_backward(*folded, *reused)
    return fold.unfold(new_w), fold.unfold(new_m)  # type: ignore[return-value]


class _W1Write(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bn: float, *inputs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        return _apply(W1Inputs(*inputs), bn, _w1_forward, ctx)  # type: ignore[arg-type]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        *inputs, sr, qr = ctx.saved_tensors
        w1, m1, r, a, g, c, s, q = inputs
        fold, bn = ctx.fold, ctx.bn
        gw, gm = fold.fold(gw, "mat"), fold.fold(gm, "mat")  # [*lead, a, b] -> [N, a, b]
        dw1 = dm1 = dr = da = dg = dc = ds = dq = None
        if gw is not None:
            dw1, dg = g * gw, _matsum(gw, w1)
            d_sr = torch.bmm(a, gw.mT).neg_()  # dL/d(diag(s) R) [N, C, d]
            da, dr, ds = torch.bmm(sr, gw).neg_(), s * d_sr, _rowsum(d_sr, r)
            if m1 is not None:
                dm1, dc = c * gw, _matsum(gw, m1)
        if gm is not None and m1 is not None:
            dm1 = bn * gm if dm1 is None else torch.add(dm1, gm, alpha=bn)
            d_qr = torch.bmm(a, gm.mT).neg_()
            da = torch.bmm(qr, gm).neg_() if da is None else torch.baddbmm(da, qr, gm, alpha=-1)
            dr = q * d_qr if dr is None else torch.addcmul(dr, q, d_qr)
            dq = _rowsum(d_qr, r)
        grads = (dw1, dm1, dr, da, dg, dc, ds, dq)
        return (None, *fold.grads(grads, ctx.shapes, ctx.needs_input_grad[1:]))


class _W2Write(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bn: float, *inputs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ctx.set_materialize_grads(False)
        return _apply(W2Inputs(*inputs), bn, _w2_forward, ctx)  # type: ignore[arg-type]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gw: Tensor | None, gm: Tensor | None) -> tuple[Tensor | None, ...]:
        *inputs, z, f, rhs, kw, km = ctx.saved_tensors
        w2, m2, k, e, g, c, d, gl, gp, cp, solve, dkk, br = inputs
        fold, bn = ctx.fold, ctx.bn
        gw, gm = fold.fold(gw, "mat"), fold.fold(gm, "mat")  # [*lead, a, b] -> [N, a, b]
        dw2 = dm2 = dk = de = dg = dc = dd = dgl = dgp = dcp = dsolve = ddkk = None
        if gm is not None and m2 is not None:
            dm2, dk = bn * gm, torch.bmm(br * e, gm).neg_()
            de = (br * torch.bmm(k, gm.mT)).neg_()
        if gw is not None:
            dg, dw2 = _matsum(gw, w2), g * gw
            if m2 is not None:
                dc = _matsum(gw, m2)
                dm2 = c * gw if dm2 is None else torch.addcmul(dm2, c, gw)
            dz = torch.bmm(k, gw.mT)  # [N, C, n]
            dk = torch.bmm(z, gw) if dk is None else torch.baddbmm(dk, z, gw)
            dd = _rowsum(dz, e).neg_()
            de = (d * dz).neg_() if de is None else torch.addcmul(de, d, dz, value=-1)
            if f is not None and rhs is not None and kw is not None:
                df = gl * dz
                dgl, dsolve, drhs = _rowsum(dz, f), torch.bmm(df, rhs.mT), torch.bmm(solve.mT, df)
                dgp, ddkk = _rowsum(drhs, kw), torch.bmm(drhs, e.mT).neg_()
                de = torch.baddbmm(de, dkk.mT, drhs, alpha=-1)
                dkw = gp * drhs  # d(K W2^T)
                dk, dw2 = torch.baddbmm(dk, dkw, w2), torch.baddbmm(dw2, dkw.mT, k)
                if m2 is not None and cp is not None and km is not None and dm2 is not None:
                    dcp, dks = _rowsum(drhs, km), cp * drhs
                    dk, dm2 = torch.baddbmm(dk, dks, m2), torch.baddbmm(dm2, dks.mT, k)
        grads = (dw2, dm2, dk, de, dg, dc, dd, dgl, dgp, dcp, dsolve, ddkk, None)  # br: constant
        return (None, *fold.grads(grads, ctx.shapes, ctx.needs_input_grad[1:]))


def w1_write(x: W1Inputs, bn: float, fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(W1', S1')`` of one chunk (module docstring); ``bn = beta^C``. ``fused`` (and a graph
    being recorded): the hand-derived backward; else plain autograd. ``S1'`` is ``None``
    without momentum."""
    if fused and torch.is_grad_enabled():
        out: tuple[Tensor, Tensor | None] = _W1Write.apply(bn, *x)
        return out
    return _apply(x, bn, _w1_forward)


def w2_write(x: W2Inputs, bn: float, fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(W2', S2')`` of one chunk, as :func:`w1_write`."""
    if fused and torch.is_grad_enabled():
        out: tuple[Tensor, Tensor | None] = _W2Write.apply(bn, *x)
        return out
    return _apply(x, bn, _w2_forward)
