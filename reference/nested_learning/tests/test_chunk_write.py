"""The chunk write's hand-derived backward (core/chunk_write.py) against autograd and finite
differences, for every flag of the write; and the Titans mixer with and without it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_memory import DT, rand_chunk, rand_state

from nested_learning.core.chunk_write import W1Inputs, W2Inputs, w1_write, w2_write
from nested_learning.core.memory import MemoryGrads, dgd_chunk_update
from nested_learning.core.titans import SelfModifyingTitans, TitansConfig

FLAGS = [(dgd, momentum) for dgd in (True, False) for momentum in (True, False)]


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(shape, dtype=DT, requires_grad=True)


@pytest.mark.parametrize("momentum", [True, False])
@pytest.mark.parametrize("g_shape", [(2, 3), (2, 1)])  # per matrix, or broadcast over a stack
@pytest.mark.parametrize("w_lead", [(2, 3), (1, 3)])  # per sequence, or shared (initial state)
def test_w1_write_gradcheck(momentum: bool, g_shape: tuple[int, ...], w_lead) -> None:
    c, d, h = 4, 3, 2
    w1, r, a = _rand(*w_lead, d, h), _rand(2, 3, c, d), _rand(2, 3, c, h)
    g, s = _rand(*g_shape), _rand(*g_shape, c)
    m1, cc, q = (
        (_rand(*w_lead, d, h), _rand(*g_shape), _rand(*g_shape, c)) if momentum else (None,) * 3
    )

    def fn(*xs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        return tuple(o for o in w1_write(W1Inputs(*xs), 0.7) if o is not None)  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(fn, (w1, m1, r, a, g, cc, s, q))


@pytest.mark.parametrize("dgd,momentum", FLAGS)
@pytest.mark.parametrize("w_lead", [(2,), (1,)])  # per sequence, or shared (initial state)
def test_w2_write_gradcheck(dgd: bool, momentum: bool, w_lead) -> None:
    c, d, n = 4, 3, 5
    w2, k, e = _rand(*w_lead, n, d), _rand(2, c, d), _rand(2, c, n)
    g, dl, gl, gp = _rand(2), _rand(2, c), _rand(2, c), _rand(2, c)
    solve, dkk = (_rand(2, c, c), _rand(2, c, c)) if dgd else (None, None)
    m2, cc, cp = (_rand(*w_lead, n, d), _rand(2), _rand(2, c)) if momentum else (None,) * 3
    br = torch.rand(c, dtype=DT) if momentum else None

    def fn(*xs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        out = w2_write(W2Inputs(*xs, br), 0.7)  # type: ignore[arg-type]
        return tuple(o for o in out if o is not None)

    assert torch.autograd.gradcheck(fn, (w2, m2, k, e, g, cc, dl, gl, gp, cp, solve, dkk))


# (state lead, shared k lead): per-memory k, and a stack of 3 memories sharing k (folded rows)
@pytest.mark.parametrize("lead,k_lead", [((2, 2), (2, 2)), ((2, 2, 3), (2, 2, 1))])
@pytest.mark.parametrize("dgd,momentum", FLAGS)
def test_fused_write_equals_autograd_write(dgd: bool, momentum: bool, lead, k_lead) -> None:
    state = rand_state(lead, 4, 3, momentum)
    k, grads, eta, alpha = rand_chunk(k_lead, 6, 4, 3)
    grads = MemoryGrads(*(torch.randn(*lead, 6, n, dtype=DT) for n in (4, 3, 3)))
    leaves = [t.clone().requires_grad_() for t in (*[s for s in state if s is not None], k)]
    leaves += [t.clone().requires_grad_() for t in (*grads, eta, alpha)]
    weights = [torch.randn_like(t) for t in state if t is not None]
    n = 4 if momentum else 2

    def run(fused: bool) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        st = type(state)(*leaves[:n])
        g = MemoryGrads(*leaves[n + 1 : n + 4])
        out = dgd_chunk_update(
            st, leaves[n], g, leaves[n + 4], leaves[n + 5], dgd=dgd, beta=0.6, fused=fused
        )
        outs = [o for o in out if o is not None]
        loss = sum((o * w).sum() for o, w in zip(outs, weights, strict=True))
        return outs, torch.autograd.grad(loss, leaves)

    (fused_out, fused_grads), (plain_out, plain_grads) = run(True), run(False)
    for x, y in zip([*fused_out, *fused_grads], [*plain_out, *plain_grads], strict=True):
        torch.testing.assert_close(x, y)


def test_a_second_backward_through_the_fused_write_raises() -> None:
    w1, r, a, g, s = _rand(3, 2), _rand(4, 3), _rand(4, 2), _rand(), _rand(4)
    out, _ = w1_write(W1Inputs(w1, None, r, a, g, None, s, None), 0.0)
    (grad,) = torch.autograd.grad(out.square().sum(), w1, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()


def _node_names(y: torch.Tensor) -> set[str]:
    seen, todo = set(), [y.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            todo.extend(nxt for nxt, _ in fn.next_functions)
    return {type(fn).__name__ for fn in seen}


@pytest.mark.parametrize("momentum", [True, False])
def test_titans_mixer_gradients_equal_with_and_without_the_fused_write(momentum: bool) -> None:
    cfg = TitansConfig(d_model=16, n_heads=2, chunk_size_memory=4, chunk_size_other=8)
    cfg = dataclasses.replace(cfg, momentum=momentum)
    torch.manual_seed(0)
    fused = SelfModifyingTitans(cfg).double()
    plain = SelfModifyingTitans(dataclasses.replace(cfg, fused_backward=False)).double()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 21, 16, dtype=DT)  # 21: a trailing partial chunk too
    grads = []
    for mixer, uses_it in ((fused, True), (plain, False)):
        y, _ = mixer(x)
        assert ("_W2WriteBackward" in _node_names(y)) == uses_it
        grads.append(torch.autograd.grad(y.square().sum(), list(mixer.parameters())))
    for gf, gp in zip(*grads, strict=True):
        torch.testing.assert_close(gf, gp)
