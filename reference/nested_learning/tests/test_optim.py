"""Tests for the associative-memory optimizers (arXiv 2512.24695 Eq. 48-50, Eq. 75 / Alg. 1).

Newton-Schulz (Eq. 42-44) is checked against the SVD polar factor, heavy-ball momentum
(Eq. 33) as the ``delta = 0`` case of the Delta Momentum step.

Each one-step test recomputes the update in a different way than the module: linear solves
instead of Sherman-Morrison, autograd instead of hand-derived inner gradients, SVD instead of
Newton-Schulz.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor

from nested_learning.core.optim import (
    CUBIC_COEFFICIENTS,
    M3,
    DeepMomentumGD,
    DeltaMomentum,
    newton_schulz,
)

DT = torch.float64


def rand(*shape: int, seed: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def take_step(opt: torch.optim.Optimizer, params: list[Tensor], grads: list[Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def orthogonal(n: int, seed: int) -> Tensor:
    return torch.linalg.qr(rand(n, n, seed=seed))[0]


# ------------------------------------------------------------------ Newton-Schulz
@pytest.mark.parametrize(("m", "n"), [(6, 6), (8, 5), (5, 8)])
@pytest.mark.parametrize("cond", [1.0, 10.0])
def test_cubic_newton_schulz_converges_to_polar_factor(m, n, cond):
    """Eq. 43-44's cubic iteration. Well-conditioned G = U S V^T. After Frobenius scaling
    sigma_min >= 1/(cond sqrt(k)) >= 0.04, the cubic map grows small singular values by 1.5x per
    step (~8 steps to reach [0.5, 1]) and then converges quadratically, so 30 steps reach float64
    round-off: tolerance 1e-10."""
    k = min(m, n)
    s = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), k, dtype=DT)
    U, V = orthogonal(m, 1)[:, :k], orthogonal(n, 2)[:, :k]
    G = U @ torch.diag(s) @ V.T
    orth = newton_schulz(G, steps=30, coefficients=CUBIC_COEFFICIENTS)
    torch.testing.assert_close(orth, U @ V.T, rtol=0, atol=1e-10)
    svd_u, _, svd_vh = torch.linalg.svd(G, full_matrices=False)  # polar factor from torch's SVD
    torch.testing.assert_close(orth, svd_u @ svd_vh, rtol=0, atol=1e-10)


def test_muon_newton_schulz_is_approximately_orthogonal():
    """Muon's quintic (Eq. 42; 5 steps) trades accuracy for speed: its fixed-point band is
    ~[0.68, 1.13], so we only ask singular values in [0.6, 1.2] and >= 0.9 cosine with the SVD
    polar factor."""
    G = rand(4, 16, 12, seed=3)  # batched input
    orth = newton_schulz(G, steps=5)
    sv = torch.linalg.svdvals(orth)
    assert sv.min() > 0.6 and sv.max() < 1.2
    u, _, vh = torch.linalg.svd(G, full_matrices=False)
    polar = u @ vh
    cos = (orth * polar).sum((-2, -1)) / (orth.norm(dim=(-2, -1)) * polar.norm(dim=(-2, -1)))
    assert (cos > 0.9).all()


def test_newton_schulz_keeps_dtype_and_rejects_vectors():
    assert newton_schulz(torch.randn(4, 3, dtype=torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="newton_schulz"):
        newton_schulz(torch.randn(5))


# ------------------------------------------------------------------ Delta Momentum
@pytest.mark.parametrize("key", ["row", "flat"])
@pytest.mark.parametrize("delta", [0.0, 0.7])
def test_delta_momentum_step_is_exact_proximal_solution(key, delta):
    """m+ = argmin_m <m,g> + delta/2 <m,g>^2 + 1/(2 lr) ||m - alpha m||^2 per key, computed here by
    a linear solve (m+ (I + lr delta g g^T) = alpha m - lr g), then W+ = W + m+. ``delta = 0`` is
    heavy-ball momentum m+ = alpha m - lr g (Eq. 33)."""
    lr, alpha = 0.3, 0.8
    W = rand(3, 4, seed=0).requires_grad_(True)
    opt = DeltaMomentum([W], lr=lr, momentum=alpha, delta=delta, key=key)
    take_step(opt, [W], [rand(3, 4, seed=1)])  # make the momentum non-zero
    m, w = opt.state[W]["momentum_buffer"].clone(), W.detach().clone()
    g = rand(3, 4, seed=2)
    take_step(opt, [W], [g])
    rows = (lambda t: t) if key == "row" else (lambda t: t.reshape(1, -1))
    gk, mk = rows(g), rows(m)
    expected = torch.stack(
        [
            torch.linalg.solve(
                torch.eye(gk.shape[1], dtype=DT) + lr * delta * torch.outer(gi, gi),
                alpha * mi - lr * gi,  # the system matrix is symmetric, so row/column agree
            )
            for gi, mi in zip(gk, mk, strict=True)
        ]
    ).reshape(3, 4)
    torch.testing.assert_close(opt.state[W]["momentum_buffer"], expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(W.detach(), w + expected, rtol=1e-12, atol=1e-14)


def test_delta_momentum_decay_is_bounded_for_huge_gradients():
    """eta' ||g||^2 < 1: the forgetting along g never overshoots, even with ||g|| = 1e6."""
    W = torch.zeros(2, 3, dtype=DT, requires_grad=True)
    opt = DeltaMomentum([W], lr=1.0, momentum=0.9, delta=1.0)
    for seed in range(5):
        take_step(opt, [W], [1e6 * rand(2, 3, seed=seed)])
        assert torch.isfinite(W).all() and W.abs().max() < 10


# ------------------------------------------------------------------ Deep Momentum GD
def test_deep_momentum_step_matches_autograd_on_the_inner_objective():
    lr, inner_lr, keep = 0.2, 0.4, 0.9
    W = rand(5, 3, seed=0).requires_grad_(True)
    opt = DeepMomentumGD([W], lr=lr, inner_lr=inner_lr, retention=keep, hidden=4)
    take_step(opt, [W], [rand(5, 3, seed=1)])  # initialises W1 and makes W2 non-zero
    w1, w2 = (opt.state[W][k].clone().requires_grad_(True) for k in ("w1", "w2"))
    w = W.detach().clone()
    g = rand(5, 3, seed=2)
    take_step(opt, [W], [g])

    keys = g / g.norm(dim=1, keepdim=True)
    inner = 0.5 * ((torch.tanh(keys @ w1.T) @ w2.T - keys) ** 2).sum(1).mean()
    d1, d2 = torch.autograd.grad(inner, [w1, w2])
    n1, n2 = keep * w1.detach() - inner_lr * d1, keep * w2.detach() - inner_lr * d2
    torch.testing.assert_close(opt.state[W]["w1"], n1, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.state[W]["w2"], n2, rtol=1e-12, atol=1e-14)
    update = g.norm(dim=1, keepdim=True) * (torch.tanh(keys @ n1.T) @ n2.T)
    torch.testing.assert_close(W.detach(), w - lr * update, rtol=1e-12, atol=1e-14)


def test_deep_momentum_treats_vectors_as_one_row_and_is_sign_equivariant():
    b1 = torch.zeros(6, dtype=DT, requires_grad=True)
    b2 = torch.zeros(6, dtype=DT, requires_grad=True)
    g = rand(6, seed=4)
    torch.manual_seed(0)
    o1 = DeepMomentumGD([b1], lr=0.1)
    take_step(o1, [b1], [g])
    torch.manual_seed(0)
    o2 = DeepMomentumGD([b2], lr=0.1)
    take_step(o2, [b2], [-g])
    assert o1.state[b1]["w1"].shape == (6, 6)
    torch.testing.assert_close(b2.detach(), -b1.detach(), rtol=1e-12, atol=1e-14)
    assert (b1.detach() * g).sum() < 0  # a descent step


# ------------------------------------------------------------------ M3
def ref_m3(grads: list[Tensor], lr, b1, b2, b3, alpha, eps, C, ema, steps=5) -> Tensor:
    """Algorithm 1 written out with plain tensors, from W = 0: returns the final W."""
    W = torch.zeros_like(grads[0])
    m1, v, m2, o2 = (torch.zeros_like(W) for _ in range(4))
    for t, g in enumerate(grads, start=1):
        if ema:
            m1, v = b1 * m1 + (1 - b1) * g, b2 * v + (1 - b2) * g**2
            vh = v / (1 - b2**t)
        else:
            m1, v = m1 + b1 * g, v + b2 * g**2
            vh = v
        W = W - lr * (newton_schulz(m1, steps) + alpha * o2) / (vh.sqrt() + eps)
        if t % C == 0:
            chunk = sum(grads[t - C : t])  # exactly the C gradients of the chunk
            m2 = b3 * m2 + (1 - b3) * chunk if ema else m2 + b3 * chunk
            o2 = newton_schulz(m2, steps)
    return W


@pytest.mark.parametrize("ema", [True, False])
def test_m3_matrix_steps_match_algorithm_1(ema):
    hp = {"lr": 0.01, "b1": 0.9, "b2": 0.99, "b3": 0.8, "alpha": 0.5, "eps": 1e-8, "C": 3}
    grads = [rand(4, 6, seed=s) for s in range(7)]
    W = torch.zeros(4, 6, dtype=DT, requires_grad=True)
    opt = M3([W], lr=hp["lr"], betas=(hp["b1"], hp["b2"], hp["b3"]), alpha=hp["alpha"],
             eps=hp["eps"], slow_chunk=hp["C"], ema=ema)  # fmt: skip
    for g in grads:
        take_step(opt, [W], [g])
    torch.testing.assert_close(W.detach(), ref_m3(grads, **hp, ema=ema), rtol=1e-10, atol=1e-12)


def test_m3_non_matrix_params_use_adamw():
    lr, b1, b2, eps, wd = 0.05, 0.9, 0.99, 1e-8, 0.1
    b = rand(5, seed=0).requires_grad_(True)
    w = b.detach().clone()
    opt = M3([b], lr=lr, betas=(b1, b2, 0.5), eps=eps, weight_decay=wd)
    m = v = torch.zeros(5, dtype=DT)
    for t in range(1, 4):
        g = rand(5, seed=t)
        take_step(opt, [b], [g])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w * (1 - lr * wd) - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    torch.testing.assert_close(b.detach(), w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ema", [True, False])
def test_m3_slow_momentum_changes_only_every_slow_chunk(ema):
    W = torch.zeros(3, 4, dtype=DT, requires_grad=True)
    opt = M3([W], lr=1e-3, slow_chunk=3, ema=ema)
    prev = torch.zeros(3, 4, dtype=DT)
    prev_o2 = prev.clone()
    for t in range(1, 11):
        take_step(opt, [W], [rand(3, 4, seed=t)])
        slow, o2 = opt.state[W]["slow_momentum"].clone(), opt.state[W]["slow_update"].clone()
        assert (not torch.equal(slow, prev)) == (t % 3 == 0), t
        assert (not torch.equal(o2, prev_o2)) == (t % 3 == 0), t
        prev, prev_o2 = slow, o2


# ------------------------------------------------------------------ shared behaviour
def least_squares(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    X, Wt = rand(64, 8, seed=seed), rand(4, 8, seed=seed + 1)
    Y = X @ Wt.T + 0.5 + 0.01 * rand(64, 4, seed=seed + 2)
    W = torch.zeros(4, 8, dtype=DT, requires_grad=True)
    bias = torch.zeros(4, dtype=DT, requires_grad=True)
    return X, Y, W, bias


OPTIMIZERS = {
    "delta": lambda ps: DeltaMomentum(ps, lr=0.02, momentum=0.9, delta=1.0),
    "deep": lambda ps: DeepMomentumGD(ps, lr=0.1, inner_lr=0.5, retention=0.99),
    "m3_ema": lambda ps: M3(ps, lr=0.05, slow_chunk=10),
    # literal accumulators: sqrt(V) grows like sqrt(t), so the step shrinks and needs a larger lr
    "m3_literal": lambda ps: M3(ps, lr=0.3, slow_chunk=10, ema=False),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_reduces_least_squares_loss(name):
    torch.manual_seed(0)
    X, Y, W, bias = least_squares()
    opt = OPTIMIZERS[name]([W, bias])

    def closure() -> float:
        opt.zero_grad()
        loss = ((X @ W.T + bias - Y) ** 2).mean()
        loss.backward()
        return loss.item()

    first = closure()
    for _ in range(100):
        opt.step(closure)
    assert closure() < 0.5 * first  # a sign or scale error would stall or diverge


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip(name):
    X, Y, W, bias = least_squares()

    def run(opt, params, n):
        for _ in range(n):
            opt.zero_grad()
            ((X @ params[0].T + params[1] - Y) ** 2).mean().backward()
            opt.step()

    torch.manual_seed(0)
    opt = OPTIMIZERS[name]([W, bias])
    run(opt, [W, bias], 14)  # crosses a slow-chunk boundary for M3
    clone = [W.detach().clone().requires_grad_(True), bias.detach().clone().requires_grad_(True)]
    opt2 = OPTIMIZERS[name](clone)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    run(opt, [W, bias], 7)
    run(opt2, clone, 7)
    torch.testing.assert_close(clone[0], W, rtol=0, atol=0)
    torch.testing.assert_close(clone[1], bias, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("factory", "arg"),
    [
        (lambda p: DeltaMomentum(p, lr=-1.0), "lr"),
        (lambda p: DeltaMomentum(p, momentum=1.0), "momentum"),
        (lambda p: DeltaMomentum(p, delta=-0.1), "delta"),
        (lambda p: DeltaMomentum(p, key="col"), "key"),
        (lambda p: DeepMomentumGD(p, lr=-1e-3), "lr"),
        (lambda p: DeepMomentumGD(p, inner_lr=-1.0), "inner_lr"),
        (lambda p: DeepMomentumGD(p, retention=1.5), "retention"),
        (lambda p: DeepMomentumGD(p, hidden=0), "hidden"),
        (lambda p: M3(p, lr=-0.1), "lr"),
        (lambda p: M3(p, betas=(1.0, 0.9, 0.9)), r"betas\[0\]"),
        (lambda p: M3(p, betas=(0.9, -0.1, 0.9)), r"betas\[1\]"),
        (lambda p: M3(p, betas=(0.9, 0.9, 1.2)), r"betas\[2\]"),
        (lambda p: M3(p, slow_chunk=0), "slow_chunk"),
        (lambda p: M3(p, ns_steps=0), "ns_steps"),
        (lambda p: M3(p, alpha=-1.0), "alpha"),
        (lambda p: M3(p, eps=-1.0), "eps"),
        (lambda p: M3(p, weight_decay=-1.0), "weight_decay"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_argument(factory, arg):
    with pytest.raises(ValueError, match=arg):
        factory([torch.zeros(2, 2, requires_grad=True)])


def test_an_optimizer_without_an_update_rule_cannot_be_built() -> None:
    """The shared per-parameter ``step`` needs ``_update``: a subclass that forgets it fails at
    construction, not silently at the first step."""
    from nested_learning.core.optim import _PerParameterOptimizer

    class NoRule(_PerParameterOptimizer):
        pass

    with pytest.raises(TypeError, match="_update"):
        NoRule([torch.nn.Parameter(torch.zeros(2))], {})  # type: ignore[abstract]
