"""The learning rules of experiment 1: five ways a linear memory ``W`` writes a key→value pair.

Each rule maps ``(W [E, d, d], k [d], v [d], η [E]) → W`` for a whole grid of step sizes at once
(the leading dim), see ``recall_stream.run_rule``.

Learning rules, all per token (chunk 1), fed the same ``(k, v)``:

* ``GD (Hebbian)``: dot-product surprise ``∇_y L = −v`` (``L = −⟨W k, v⟩``); GD ``W += η v kᵀ``
  (linear attention).
* ``delta rule``: GD on the L2 recall loss ``L = ½‖W k − v‖²``: ``W −= β (W k − v) kᵀ`` (DeltaNet).
* ``DGD``: same surprise as GD (``∇_y L = −v``) with the DGD rule - this is the paper's Eq. 92
  (sign fixed) with α = 1, i.e. a delta rule whose step η' is normalised by ‖k‖².
* ``DGD (L2 surprise)``: DGD fed the L2-loss surprise ``∇_y L = W k − v`` (the Hope memory's
  Eq. 93 at chunk 1): the decay is applied twice (spec §7.2 "double decay"), fixed point W k = v/2.
* ``DGD printed step``: as ``DGD`` but with the printed ``η' = η/(1+η)`` (exact only for ‖k‖ = 1).
"""

from __future__ import annotations

import torch
from recall_stream import Rule
from torch import Tensor

from nested_learning.core.dgd import dgd_update

GD, DELTA, DGD, DGD_L2, DGD_PRINTED = (
    "GD (Hebbian)",
    "delta rule",
    "DGD",
    "DGD (L2 surprise)",
    "DGD printed step",
)
METHODS = (GD, DELTA, DGD, DGD_L2, DGD_PRINTED)


def _rank1(W: Tensor, step: Tensor, grad_y: Tensor, k: Tensor) -> Tensor:
    """W − step · (W k + grad_y) kᵀ, batched over the leading η-grid dim."""
    return W - step[:, None, None] * (W @ k + grad_y)[:, :, None] * k


def gd_hebbian(W: Tensor, k: Tensor, v: Tensor, eta: Tensor) -> Tensor:
    """GD on the dot-product surprise (Eq. 55): W + η v kᵀ."""
    return W + eta[:, None, None] * torch.outer(v, k)


def delta_rule(W: Tensor, k: Tensor, v: Tensor, eta: Tensor) -> Tensor:
    """GD on ½‖W k − v‖²: W − β (W k − v) kᵀ."""
    return W - eta[:, None, None] * (W @ k - v)[:, :, None] * k


def dgd(W: Tensor, k: Tensor, v: Tensor, eta: Tensor) -> Tensor:
    """DGD (Eq. 57, corrected η') on the dot-product surprise ∇_y L = −v."""
    return dgd_update(W, k.expand(W.shape[0], -1), -v.expand(W.shape[0], -1), eta)


def dgd_l2(W: Tensor, k: Tensor, v: Tensor, eta: Tensor) -> Tensor:
    """DGD (corrected η') on the L2-loss surprise ∇_y L = W k − v (decay applied twice)."""
    grad_y = W @ k - v
    return dgd_update(W, k.expand(W.shape[0], -1), grad_y, eta)


def dgd_printed(W: Tensor, k: Tensor, v: Tensor, eta: Tensor) -> Tensor:
    """DGD with the printed step η/(1+η) of Eq. 57 (exact only when ‖k‖ = 1)."""
    return _rank1(W, eta / (1 + eta), -v.expand(W.shape[0], -1), k)


RULES: dict[str, Rule] = {
    GD: gd_hebbian,
    DELTA: delta_rule,
    DGD: dgd,
    DGD_L2: dgd_l2,
    DGD_PRINTED: dgd_printed,
}
