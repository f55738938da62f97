"""Optimizers that the paper derives by reading momentum as an associative memory of gradients.

arXiv 2512.24695 §4.4 (Eq. 48-50; its other variants are not implemented) and §7.2 (Eq. 75,
Algorithm 1). Notation: ``g`` is the gradient of the outer loss w.r.t. a parameter ``W``;
``m`` the momentum memory; ``W <- W + m``.

* :class:`DeltaMomentum` - momentum trained with an L2 (delta-rule) objective, Eq. 48-49 [fix].
* :class:`DeepMomentumGD` - momentum whose memory is an MLP (DMGD), Eq. 50.
* :class:`M3` - Multi-scale Momentum Muon, Eq. 75 / Algorithm 1 (fast + slow momentum, both
  Newton-Schulz orthogonalised, divided by an Adam second moment).
* :func:`newton_schulz` - the orthogonalisation used by M3 (and Muon, Eq. 42-44).

Keys. Eq. 48 writes the memory's keys as ``grad L^T``, i.e. for a matrix parameter the *rows* of
``g`` are the keys. [choice] Every parameter is viewed as rows: a 2-D weight ``[out, in]`` as is,
an N-D tensor as ``[shape[0], prod(rest)]`` and a 1-D tensor as one row (see :func:`as_rows`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable
from typing import Any, overload

import torch
from torch import Tensor
from torch.optim import Optimizer

Params = Iterable[Tensor] | Iterable[dict[str, Any]]

#: Quintic Newton-Schulz coefficients of Muon (fast, but singular values only reach ~[0.7, 1.15]).
MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
#: Classic cubic Newton-Schulz ``X <- 1.5 X - 0.5 X X^T X``: converges to the exact polar factor.
CUBIC_COEFFICIENTS = (1.5, -0.5, 0.0)


# --------------------------------------------------------------------------- helpers
def _check(name: str, value: float, lo: float, hi: float = math.inf, hi_open: bool = True) -> None:
    """Raise ValueError naming ``name`` unless lo <= value < hi (or <= hi when not hi_open)."""
    ok = lo <= value and (value < hi if hi_open else value <= hi)
    if not (ok and math.isfinite(value)):
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in [{lo}, {hi}{bracket}, got {value}")


def as_rows(t: Tensor) -> Tensor:
    """Row-key view of a parameter: [out, in] as is, [d0, ...] -> [d0, -1], [n] -> [1, n]."""
    return t.reshape(1, -1) if t.dim() < 2 else t.reshape(t.shape[0], -1)


class _PerParameterOptimizer(Optimizer, abc.ABC):
    """Shared ``step``: run the closure, then ``_update`` every parameter that has a gradient."""

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, group)
        return loss

    @abc.abstractmethod
    def _update(self, p: Tensor, g: Tensor, group: dict[str, Any]) -> None:
        """Update ``p`` in place from its gradient ``g`` (under ``torch.no_grad``)."""


# --------------------------------------------------------------------------- Newton-Schulz
def newton_schulz(
    G: Tensor, steps: int = 5, coefficients: tuple[float, float, float] = MUON_COEFFICIENTS
) -> Tensor:
    """Approximate the orthogonal polar factor U V^T of G = U S V^T (Muon, Eq. 42-44).

    X_0 = G / ||G||_F (all singular values <= 1), then ``steps`` times
    X <- a X + (b A + c A^2) X with A = X X^T, an odd polynomial acting on the singular values.
    Works on the short side (transposes tall inputs) and in at least fp32.

    Args:
        G: [..., m, n].
        steps: T >= 0 iterations.
        coefficients: (a, b, c); :data:`MUON_COEFFICIENTS` (default, 5 steps in practice) or
            :data:`CUBIC_COEFFICIENTS` (exact polar factor in the limit).

    Returns:
        [..., m, n] in G's dtype.
    """
    if G.dim() < 2:
        raise ValueError(f"newton_schulz needs a [..., m, n] input, got shape {tuple(G.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    a, b, c = coefficients
    X = G.to(torch.promote_types(G.dtype, torch.float32))
    tall = X.shape[-2] > X.shape[-1]
    X = X.mT if tall else X
    X = X / (torch.linalg.matrix_norm(X, keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * (A @ A)) @ X
    out: Tensor = (X.mT if tall else X).to(G.dtype)
    return out


# --------------------------------------------------------------------------- Delta Momentum
class DeltaMomentum(_PerParameterOptimizer):
    """Momentum with a delta-rule (L2) memory objective, Eq. 48-49 with the [fix] of spec §3.2.

    Per row key g_i (row i of the gradient) and momentum row m_i, one *exact proximal* step on

        l(m) = <m, g_i> + (delta/2) <m, g_i>^2 = (delta/2) (<m, g_i> + 1/delta)^2 + const,

    i.e. the L2 regression ||m g^T - P||^2 of Eq. 48 with value P = -1/delta, anchored at the
    retained memory alpha m_i:  m_i+ = argmin_m l(m) + 1/(2 lr) ||m - alpha m_i||^2. Closed form:

        m_i+ = (alpha m_i - lr g_i)(I + lr delta g_i g_i^T)^{-1}
             = alpha m_i (I - eta'_i g_i g_i^T) - lr c_i g_i,
        eta'_i = lr delta / (1 + lr delta ||g_i||^2),   c_i = 1 / (1 + lr delta ||g_i||^2),

    then W <- W + m. [choices] Decay on the *right* of m (keys are gradient rows; display 22 of the
    NeurIPS version puts it on the left); each row is its own memory (cross-row Gram terms dropped,
    so the step is O(numel) and eta'_i ||g_i||^2 < 1 holds exactly per row); the printed Eq. 49
    has no step size on ``g^T g`` (dimensionally inconsistent) - eta'_i is that step size, and the
    exact proximal step also multiplies the decay by alpha and damps the write by c_i.
    ``delta = 0`` recovers heavy-ball momentum m <- alpha m - lr g (Eq. 33); ``key="flat"`` uses
    the whole flattened gradient as one key instead of its rows.

    Args:
        params: parameters or groups.
        lr: write step size (>= 0).
        momentum: retention alpha in [0, 1).
        delta: strength of the delta-rule term (>= 0, units 1/loss).
        key: "row" (default) or "flat".
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        momentum: float = 0.9,
        delta: float = 1.0,
        key: str = "row",
    ) -> None:
        _check("lr", lr, 0.0)
        _check("momentum", momentum, 0.0, 1.0)
        _check("delta", delta, 0.0)
        if key not in ("row", "flat"):
            raise ValueError(f"key must be 'row' or 'flat', got {key!r}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "delta": delta, "key": key})

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["momentum_buffer"] = torch.zeros_like(p)
        rows = as_rows if group["key"] == "row" else (lambda t: t.reshape(1, -1))
        g, m = rows(grad), rows(state["momentum_buffer"])
        lr, alpha, ld = group["lr"], group["momentum"], group["lr"] * group["delta"]
        c = 1.0 / (1.0 + ld * (g * g).sum(1, keepdim=True))  # [r, 1]
        recall = (m * g).sum(1, keepdim=True)  # <m_i, g_i>
        m_new = alpha * (m - (ld * c * recall) * g) - lr * c * g
        state["momentum_buffer"] = m_new.reshape(p.shape)
        p.add_(state["momentum_buffer"])


# --------------------------------------------------------------------------- Deep Momentum GD
class DeepMomentumGD(_PerParameterOptimizer):
    """Deep Momentum Gradient Descent (DMGD), Eq. 50, in the "workable reading" of spec §3.2.

        W_{i+1} = W_i - lr * ||u|| m_{i+1}(u / ||u||),
        m_{i+1} = retention * m_i - inner_lr * grad L2(m_i; u_i),   u_i = rows of grad L(W_i).

    [choices, the paper leaves all of these open]
    * One memory per parameter tensor, shared by its gradient rows (a batch of keys u in R^c).
    * Memory m(k) = W2 tanh(W1 k), W1 [h, c] ~ N(0, 1), W2 [c, h] = 0, h = min(c, 256) by default
      (caps the state at 2*256*c per tensor; h < c makes the memory rank-h). tanh
      is odd, so m(-k) = -m(k): a flipped gradient flips the update. No residual path, otherwise
      the objective below would be solved trivially by W2 = 0.
    * Keys are unit-normalised rows k_j = u_j/||u_j|| and the output is rescaled by ||u_j||, so the
      non-linearity works at O(1) scale whatever the gradient magnitude (for a linear memory this
      is exactly m(u)).
    * L2(m; u) = 1/(2r) sum_j ||m(k_j) - k_j||^2 (value = the key itself, P = I): an
      auto-associative memory of recent gradient directions, which passes persistent directions
      and damps transient ones. One GD step per outer step, retention applied to W1 and W2
      (Eq. 50 literally decays all of m); the updated memory m_{i+1} is then read (Eq. 50 order).
    * The memory starts at m = 0 and learns online (its first output is already non-zero because
      the inner step precedes the read). W1 is drawn from the global RNG at the first step.

    Args:
        params: parameters or groups.
        lr: outer step size (>= 0).
        inner_lr: step size of the memory's inner GD (>= 0).
        retention: decay of the memory parameters, in [0, 1] (1 = no decay).
        hidden: memory width h (None = min(row width c, 256)).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        inner_lr: float = 0.5,
        retention: float = 0.99,
        hidden: int | None = None,
    ) -> None:
        _check("lr", lr, 0.0)
        _check("inner_lr", inner_lr, 0.0)
        _check("retention", retention, 0.0, 1.0, hi_open=False)
        if hidden is not None and hidden <= 0:
            raise ValueError(f"hidden must be > 0, got {hidden}")
        defaults = {"lr": lr, "inner_lr": inner_lr, "retention": retention, "hidden": hidden}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        u = as_rows(grad)
        state = self.state[p]
        if not state:
            h = group["hidden"] or min(u.shape[1], 256)
            state["w1"] = torch.randn(h, u.shape[1], device=p.device, dtype=p.dtype)
            state["w2"] = torch.zeros(u.shape[1], h, device=p.device, dtype=p.dtype)
        norm = u.norm(dim=1, keepdim=True)
        keys = u / norm.clamp_min(torch.finfo(u.dtype).tiny)
        self._inner_step(state, keys, group["inner_lr"], group["retention"])
        recall = torch.tanh(keys @ state["w1"].T) @ state["w2"].T  # m_{i+1}(k) [r, c]
        p.add_((norm * recall).reshape(p.shape), alpha=-group["lr"])

    @staticmethod
    def _inner_step(state: dict[str, Any], keys: Tensor, inner_lr: float, keep: float) -> None:
        """One GD step on 1/(2r) sum_j ||W2 tanh(W1 k_j) - k_j||^2 with retention ``keep``."""
        w1, w2 = state["w1"], state["w2"]
        act = torch.tanh(keys @ w1.T)  # [r, h]
        err = act @ w2.T - keys  # [r, c]
        g_w2 = err.T @ act / keys.shape[0]
        g_w1 = ((1 - act * act) * (err @ w2)).T @ keys / keys.shape[0]
        state["w1"] = keep * w1 - inner_lr * g_w1
        state["w2"] = keep * w2 - inner_lr * g_w2


# --------------------------------------------------------------------------- M3
class M3(_PerParameterOptimizer):
    """Multi-scale Momentum Muon (Eq. 75, Algorithm 1): "Adam + Muon + CMS".

    For every 2-D parameter, with T = ``ns_steps`` and C = ``slow_chunk``:

        M1 <- b1 M1 + (1 - b1) g            (ema=True)   |  M1 <- M1 + b1 g       (ema=False)
        V  <- b2 V  + (1 - b2) g^2          (ema=True)   |  V  <- V  + b2 g^2     (ema=False)
        W  <- W - lr (NS_T(M1) + alpha O2) / (sqrt(V_hat) + eps),  V_hat = V / (1 - b2^t) (EMA)
        every C steps, after the update (Algorithm 1: the slow memory is built from the gradients
        of the chunk that just ended and used during the next chunk):
        M2 <- b3 M2 + (1 - b3) S            (ema=True)   |  M2 <- M2 + b3 S       (ema=False)
        O2 <- NS_T(M2),   S = sum of the C gradients of the chunk (then S <- 0).

    O2 = 0 during the first chunk. Bias correction of M1/M2 would be a no-op because NS first
    divides by the Frobenius norm. [choices] ``ema=True`` (default, spec §14.4): Algorithm 1's pure
    accumulators never forget; ``ema=False`` is the literal algorithm. The slow sum covers exactly
    C gradients (the printed index range has C+1). Algorithm 1's sign and beta (b3, "+") are used
    over Eq. 75's (b2, "-"). Decoupled weight decay W <- W (1 - lr wd) for all parameters.
    Parameters that are not 2-D (biases, norm gains, conv kernels) use plain AdamW with (b1, b2),
    whatever ``ema`` is. Note the element-wise division of an orthogonal matrix by sqrt(V): entries
    with a persistently tiny gradient get huge steps - keep lr small or raise eps.

    Args:
        params: parameters or groups.
        lr: step size (>= 0).
        betas: (b1, b2, b3), each in [0, 1).
        alpha: weight of the slow momentum (>= 0).
        eps: denominator guard (>= 0).
        weight_decay: decoupled weight decay (>= 0).
        ns_steps: Newton-Schulz iterations T (>= 1).
        slow_chunk: C, steps between slow-memory refreshes (>= 1).
        ema: EMA (default) or literal accumulators.
        ns_coefficients: quintic/cubic polynomial of :func:`newton_schulz`.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9),
        alpha: float = 1.0,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        slow_chunk: int = 100,
        ema: bool = True,
        ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
    ) -> None:
        _check("lr", lr, 0.0)
        if len(betas) != 3:
            raise ValueError(f"betas must be (b1, b2, b3), got {betas}")
        for i, beta in enumerate(betas):
            _check(f"betas[{i}]", beta, 0.0, 1.0)
        _check("alpha", alpha, 0.0)
        _check("eps", eps, 0.0)
        _check("weight_decay", weight_decay, 0.0)
        if ns_steps < 1:
            raise ValueError(f"ns_steps must be >= 1, got {ns_steps}")
        if slow_chunk < 1:
            raise ValueError(f"slow_chunk must be >= 1, got {slow_chunk}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "ns_steps": ns_steps,
            "slow_chunk": slow_chunk,
            "ema": ema,
            "ns_coefficients": tuple(ns_coefficients),
        }
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        p.mul_(1 - group["lr"] * group["weight_decay"])
        if p.dim() == 2:
            self._m3_update(p, grad, group)
        else:
            self._adamw_update(p, grad, group)

    def _init_state(self, p: Tensor, matrix: bool) -> dict[str, Any]:
        state: dict[str, Any] = self.state[p]
        if not state:
            state["step"] = 0
            names = ["fast_momentum", "second_moment"]
            names += ["slow_momentum", "slow_buffer", "slow_update"] if matrix else []
            for name in names:
                state[name] = torch.zeros_like(p)
        return state

    def _m3_update(self, p: Tensor, g: Tensor, group: dict[str, Any]) -> None:
        state = self._init_state(p, matrix=True)
        b1, b2, b3 = group["betas"]
        state["step"] += 1
        t, m1, v = state["step"], state["fast_momentum"], state["second_moment"]
        if group["ema"]:
            m1.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / (1 - b2**t)).sqrt_().add_(group["eps"])
        else:
            m1.add_(g, alpha=b1)
            v.addcmul_(g, g, value=b2)
            denom = v.sqrt().add_(group["eps"])
        state["slow_buffer"].add_(g)
        o1 = self._ns(m1, group)
        p.addcdiv_(o1 + group["alpha"] * state["slow_update"], denom, value=-group["lr"])
        if t % group["slow_chunk"] == 0:
            self._refresh_slow(state, group, b3)

    def _refresh_slow(self, state: dict[str, Any], group: dict[str, Any], b3: float) -> None:
        """End of a slow chunk: fold the chunk's gradient sum into M2 and re-orthogonalise."""
        m2, s = state["slow_momentum"], state["slow_buffer"]
        if group["ema"]:
            m2.mul_(b3).add_(s, alpha=1 - b3)
        else:
            m2.add_(s, alpha=b3)
        state["slow_update"] = self._ns(m2, group)
        s.zero_()

    @staticmethod
    def _ns(m: Tensor, group: dict[str, Any]) -> Tensor:
        return newton_schulz(m, group["ns_steps"], group["ns_coefficients"])

    def _adamw_update(self, p: Tensor, g: Tensor, group: dict[str, Any]) -> None:
        """Fallback for non-matrix parameters: AdamW with (b1, b2) and bias correction."""
        state = self._init_state(p, matrix=False)
        b1, b2, _ = group["betas"]
        state["step"] += 1
        t, m, v = state["step"], state["fast_momentum"], state["second_moment"]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v / (1 - b2**t)).sqrt_().add_(group["eps"])
        p.addcdiv_(m, denom, value=-group["lr"] / (1 - b1**t))
