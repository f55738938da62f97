"""Delta Gradient Descent (DGD), arXiv 2512.24695 §4.5, Eq. 56-57 (derived in App. C).

GD, read as an associative memory, regresses ``W x_t`` onto the local surprise with a
*dot-product* objective (Eq. 55), so its update ignores what ``W`` already stores. DGD uses
the L2 objective instead and takes the exact proximal step (Eq. 56)::

    W_{t+1} = argmin_W 1/2 ||W x_t - u_t||^2 + 1/(2 eta) ||W - W_t||_F^2,  u_t = -grad_y L(W_t; x_t)

whose closed form (Sherman-Morrison on ``(I + eta x x^T)^{-1}``) is::

    W_{t+1} = W_t (I - eta' x_t x_t^T) - eta' grad_y L  x_t^T,   eta' = eta / (1 + eta ||x_t||^2).

Slips in the printed paper, corrected here:

* Eq. 57 writes ``eta' = eta / (1 + eta)``; that is the exact step only when ``||x_t|| = 1``.
  With un-normalised inputs it can make ``eta' ||x||^2 >= 2`` and the memory explodes, whereas
  the exact ``eta'`` always satisfies ``eta' ||x||^2 < 1``.
* The NeurIPS version (its display 29) prints ``W_t (I - x_t x_t^T)``, i.e. no step size on the
  decay, which projects the whole ``x_t`` direction out of ``W`` every step. Not implemented.
* App. C (display 114) puts ``eta`` instead of ``1/eta`` on the proximal term and flips the sign
  of ``u``.

:class:`DGD` turns the rule into a ``torch.optim.Optimizer`` for ordinary linear layers. The paper
is silent on mini-batches; we use option (a) of spec §4.3 (mean input Gram matrix) and take the
*exact* proximal step of the batch-mean objective, see :func:`dgd_batch_update`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = ["DGD", "dgd_batch_update", "dgd_step_size", "dgd_update"]


def dgd_step_size(eta: float | Tensor, x: Tensor) -> Tensor:
    """Exact DGD step ``eta' = eta / (1 + eta ||x||^2)`` (Eq. 57, corrected).

    Args:
        eta: proximal learning rate, a float or a tensor broadcastable to ``x.shape[:-1]``.
        x: inputs ``[..., d_in]``.

    Returns:
        ``eta'`` with shape ``broadcast(eta, x.shape[:-1])``. Equals ``eta / (1 + eta)`` iff
        ``||x|| = 1``.
    """
    eta_t = torch.as_tensor(eta, dtype=x.dtype, device=x.device)
    return eta_t / (1 + eta_t * x.square().sum(-1))


def dgd_update(W: Tensor, x: Tensor, grad_y: Tensor, eta: float | Tensor) -> Tensor:
    """One exact DGD step (Eq. 56-57): ``W (I - eta' x x^T) - eta' grad_y x^T``.

    Computed in rank-1 form ``W - eta' (W x + grad_y) x^T``, so no ``d_in x d_in`` matrix is built.

    Args:
        W: weights ``[..., d_out, d_in]``.
        x: layer inputs ``[..., d_in]``.
        grad_y: ``dL/dy`` at ``y = W x``, ``[..., d_out]`` (the negative regression target).
        eta: proximal learning rate, float or tensor broadcastable to ``[...]``.

    Returns:
        The updated weights ``[..., d_out, d_in]``.
    """
    eta_p = dgd_step_size(eta, x)[..., None, None]
    Wx = (W @ x[..., None]).squeeze(-1)
    return W - eta_p * (Wx + grad_y)[..., :, None] * x[..., None, :]


def dgd_batch_update(W: Tensor, X: Tensor, G: Tensor, eta: float) -> Tensor:
    """Exact proximal DGD step for a batch of inputs (our batching of Eq. 56, spec §4.3 (a)).

    Solves ``argmin_W 1/2 mean_b ||W x_b - u_b||^2 + 1/(2 eta) ||W - W_t||^2`` where the targets are
    the per-sample surprises, ``u_b = -B dL/dy_b`` for a batch-mean loss ``L``, so that
    ``mean_b u_b x_b^T = -G`` with ``G = dL/dW`` (what autograd puts in ``.grad``). Setting the
    gradient to zero gives::

        W_{t+1} = (W_t - eta G) (I + eta Sigma)^{-1},   Sigma = X^T X / B,

    which reduces to :func:`dgd_update` for ``B = 1``. The inverse is applied with a linear solve of
    size ``min(B, d_in)`` (Woodbury when ``B < d_in``); this optimizer is meant for ordinary layers
    with moderate ``d_in``, not for the per-token fast memories.

    Args:
        W: weights ``[d_out, d_in]``.
        X: inputs ``[B, d_in]`` (flatten any extra leading dims first).
        G: gradient of the batch-mean loss w.r.t. ``W``, ``[d_out, d_in]``.
        eta: proximal learning rate.
    """
    n, d_in = X.shape
    Y = W - eta * G
    eye = torch.eye(min(n, d_in), dtype=X.dtype, device=X.device)
    if n < d_in:
        # (I + eta/B X^T X)^{-1} = I - X^T (B/eta I + X X^T)^{-1} X   (Woodbury)
        Z: Tensor = torch.linalg.solve(n / eta * eye + X @ X.T, X)
        return Y - (Y @ X.T) @ Z
    A = eye + (eta / n) * (X.T @ X)  # symmetric, so Y A^{-1} = (A^{-1} Y^T)^T
    out: Tensor = torch.linalg.solve(A, Y.T).T
    return out


class DGD(torch.optim.Optimizer):
    """Delta Gradient Descent for ``nn.Linear`` weights (Eq. 56-57 with batch-mean Gram decay).

    For every 2-D parameter whose layer input is known, ``step`` applies
    :func:`dgd_batch_update` with the input flattened to ``[N, d_in]``; ``p.grad`` is read as the
    gradient of a loss that is a *mean* over those N rows (a sum loss scales the gradient term by N
    relative to the decay). All other parameters (biases, norms, weights without a recorded input)
    get plain SGD ``p <- p - lr * grad`` — the bias of ``W x + b`` is not part of the decay.

    Inputs come either from ``step(inputs={weight: X})`` or from :meth:`track`, which hooks every
    ``nn.Linear`` in a module and records the input of its *last* forward call. Recorded inputs
    are consumed (cleared) by ``step`` so a stale input is never reused.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2):
        if lr <= 0:
            raise ValueError(f"DGD lr must be > 0, got {lr!r}")
        super().__init__(params, {"lr": lr})
        self._inputs: dict[Tensor, Tensor] = {}

    def track(self, module: nn.Module) -> list[RemovableHandle]:
        """Record the last input of every ``nn.Linear`` in ``module``; returns the hook handles."""

        def make_hook(weight: Tensor) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
            def hook(_mod: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
                self._inputs[weight] = args[0].detach()

            return hook

        return [
            m.register_forward_hook(make_hook(m.weight))
            for m in module.modules()
            if isinstance(m, nn.Linear)
        ]

    @torch.no_grad()
    def step(  # type: ignore[override]
        self,
        closure: Callable[[], float] | None = None,
        inputs: Mapping[Tensor, Tensor] | None = None,
    ) -> float | None:
        """One DGD step; ``inputs`` maps weight tensors to their layer input ``[..., d_in]``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        known = {**self._inputs, **(inputs or {})}
        self._inputs.clear()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                X = known.get(p)
                if p.ndim == 2 and X is not None:
                    X2 = X.reshape(-1, p.shape[1]).to(p.dtype)
                    p.copy_(dgd_batch_update(p, X2, p.grad, lr))
                else:
                    p.add_(p.grad, alpha=-lr)
        return loss
