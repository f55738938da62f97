"""The residual-MLP fast memory (Eq. 89) and its DGD write (Eq. 88).

Checked against per-token loops with materialised ``(alpha I - eta k k^T)`` matrices and autograd
inner gradients; the chunk's closed form equals the sequential write (Eq. 91); a linear memory with
the dot-product objective is the gated delta rule (Eq. 92, sign fixed).
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from nested_learning.core.memory import (
    ACTIVATIONS,
    FastWeights,
    MemoryGrads,
    dgd_chunk_apply,
    dgd_chunk_coefficients,
    dgd_chunk_update,
    dgd_chunk_update_sequential,
    matrix_memory_dgd_dot,
    memory_chunk_grads,
    memory_forward,
    memory_forward_many,
)

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


SHAPES = [(1, 1, 4, 3), (2, 3, 5, 5), (3, 2, 2, 6)]  # (B, H, d, h)


def rand_state(lead, d, h, momentum=False, scale=0.5):
    w1, w2 = scale * torch.randn(*lead, d, h, dtype=DT), scale * torch.randn(*lead, h, d, dtype=DT)
    if not momentum:
        return FastWeights(w1, w2)
    return FastWeights(w1, w2, 0.1 * torch.randn_like(w1), 0.1 * torch.randn_like(w2))


def rand_chunk(lead, c, d, h, alpha_min=0.5):
    k = F.normalize(torch.randn(*lead, c, d, dtype=DT), dim=-1)
    grads = MemoryGrads(*(torch.randn(*lead, c, n, dtype=DT) for n in (d, h, h)))
    eta = 0.5 * torch.rand(*lead, c, dtype=DT)
    alpha = alpha_min + (1 - alpha_min) * torch.rand(*lead, c, dtype=DT)
    return k, grads, eta, alpha


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_memory_forward_matches_per_token_loop(shape, act):
    B, H, d, h = shape
    w1, w2, *_ = rand_state((B, H), d, h)
    z = torch.randn(B, H, 7, d, dtype=DT)
    sigma = ACTIVATIONS[act][0]
    out = memory_forward(w1, w2, z, act)
    for b, hh, t in itertools.product(range(B), range(H), range(7)):
        ref = z[b, hh, t] + w1[b, hh] @ sigma(w2[b, hh] @ z[b, hh, t])
        torch.testing.assert_close(out[b, hh, t], ref)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation_derivative(act):
    fn, prime = ACTIVATIONS[act]
    z = torch.linspace(-6, 6, 101, dtype=DT, requires_grad=True)
    (auto,) = torch.autograd.grad(fn(z).sum(), z)
    torch.testing.assert_close(prime(z.detach()), auto)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ["silu", "gelu", "tanh"])
def test_chunk_grads_are_autograd_gradients(shape, act):
    B, H, d, h = shape
    w1, w2, *_ = rand_state((B, H), d, h, scale=1.0)
    k, v_hat = torch.randn(B, H, 4, d, dtype=DT), torch.randn(B, H, 4, d, dtype=DT)
    r, a, u = memory_chunk_grads(w1, w2, k, v_hat, act)
    assert r.shape == (B, H, 4, d) and a.shape == u.shape == (B, H, 4, h)
    sigma = ACTIVATIONS[act][0]
    for b, hh, t in itertools.product(range(B), range(H), range(4)):
        p1, p2 = w1[b, hh].clone().requires_grad_(), w2[b, hh].clone().requires_grad_()
        kt = k[b, hh, t]
        loss = (kt + p1 @ sigma(p2 @ kt) - v_hat[b, hh, t]).square().sum()
        g1, g2 = torch.autograd.grad(loss, (p1, p2))
        torch.testing.assert_close(torch.outer(r[b, hh, t], a[b, hh, t]), g1)
        torch.testing.assert_close(torch.outer(u[b, hh, t], kt), g2)


def matrix_form_update(state, k, grads, eta, alpha, dgd, beta):
    """The chunk write with materialised (alpha I - eta k k^T) and full gradient matrices."""
    w1, w2, m1, m2 = state
    r, a, u = grads
    eye = torch.eye(k.shape[-1], dtype=DT)
    for t in range(k.shape[-2]):
        kt, e, al = k[..., t, :], eta[..., t, None, None], alpha[..., t, None, None]
        g1 = r[..., t, :, None] @ a[..., t, None, :]
        g2 = u[..., t, :, None] @ kt[..., None, :]
        decay = al * eye - (e * (kt[..., :, None] @ kt[..., None, :]) if dgd else 0)
        if m1 is None:
            w1, w2 = al * w1 - e * g1, w2 @ decay - e * g2
        else:
            m1, m2 = beta * m1 - (1 - beta) * e * g1, beta * m2 - (1 - beta) * e * g2
            w1, w2 = al * w1 + m1, w2 @ decay + m2
    return FastWeights(w1, w2, m1, m2)


CASES = list(itertools.product([True, False], [True, False]))  # (dgd, momentum)


@pytest.mark.parametrize("dgd,momentum", CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("c", [1, 5])
def test_sequential_rank1_equals_matrix_form(dgd, momentum, shape, c):
    B, H, d, h = shape
    state = rand_state((B, H), d, h, momentum)
    k, grads, eta, alpha = rand_chunk((B, H), c, d, h)
    got = dgd_chunk_update_sequential(state, k, grads, eta, alpha, dgd=dgd, beta=0.8)
    want = matrix_form_update(state, k, grads, eta, alpha, dgd, 0.8)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y)


# (state lead, shared k lead): 3 memories share k / eta / alpha, broadcast over an outer dim or
# over the dim right before the matrices (the stacked-rows fast path)
LAYOUTS = [((2, 3, 2), (2, 1, 2)), ((2, 2, 3), (2, 2, 1)), ((2, 2), (2, 2))]


@pytest.mark.parametrize("dgd,momentum", CASES)
@pytest.mark.parametrize("c", [1, 7, 16])
@pytest.mark.parametrize("alpha_min,beta", [(0.05, 0.0), (0.9, 0.9)])
@pytest.mark.parametrize("lead,k_lead", LAYOUTS)
def test_closed_form_equals_sequential(dgd, momentum, c, alpha_min, beta, lead, k_lead):
    state = rand_state(lead, 4, 3, momentum)
    k, grads, eta, alpha = rand_chunk(k_lead, c, 4, 3, alpha_min)
    # per-memory a, u; r shared (broadcast) to exercise mixed leading dims
    grads = MemoryGrads(grads.r, *(torch.randn(*lead, c, 3, dtype=DT) for _ in range(2)))
    seq = dgd_chunk_update_sequential(state, k, grads, eta, alpha, dgd=dgd, beta=beta)
    closed = dgd_chunk_update(state, k, grads, eta, alpha, dgd=dgd, beta=beta)
    for x, y in zip(closed, seq, strict=True):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("momentum", [False, True])
@pytest.mark.parametrize("lead,k_lead", LAYOUTS)
def test_closed_form_gradients_equal_sequential(momentum, lead, k_lead):
    state = rand_state(lead, 4, 3, momentum)
    k, grads, eta, alpha = rand_chunk(k_lead, 6, 4, 3)
    grads = MemoryGrads(*(torch.randn(*lead, 6, n, dtype=DT) for n in (4, 3, 3)))
    leaves = [
        t.clone().requires_grad_()
        for t in (*[s for s in state if s is not None], k, *grads, eta, alpha)
    ]
    weights = [torch.randn_like(t) for t in state if t is not None]

    def run(fn):
        n = 4 if momentum else 2
        st = FastWeights(*leaves[:n])
        g = MemoryGrads(*leaves[n + 1 : n + 4])
        out = fn(st, leaves[n], g, leaves[n + 4], leaves[n + 5], beta=0.7)
        loss = sum(
            (o * w).sum() for o, w in zip([o for o in out if o is not None], weights, strict=True)
        )
        return torch.autograd.grad(loss, leaves)

    for g_closed, g_seq in zip(
        run(dgd_chunk_update), run(dgd_chunk_update_sequential), strict=True
    ):
        torch.testing.assert_close(g_closed, g_seq)


@pytest.mark.parametrize("dgd,momentum", CASES)
def test_coefficients_batched_over_chunks_chain_like_per_chunk_updates(dgd, momentum):
    """Coefficients computed once for N chunks, then applied chunk by chunk (the Titans mixer's
    fast path), give every intermediate state of N sequential per-chunk updates."""
    n, c, d, h, beta = 3, 5, 4, 3, (0.7 if momentum else 0.0)
    state = rand_state((2, 2), d, h, momentum)
    chunks = [rand_chunk((2, 2), c, d, h) for _ in range(n)]
    k, eta, alpha = (torch.stack([ch[i] for ch in chunks], dim=2) for i in (0, 2, 3))
    coef = dgd_chunk_coefficients(k, eta, alpha, dgd=dgd, beta=beta)
    fast, slow = state, state
    for one, (ki, grads, ei, ai) in zip(coef.unbind(2), chunks, strict=True):
        fast = dgd_chunk_apply(fast, ki, grads, one, beta=beta)
        slow = dgd_chunk_update_sequential(slow, ki, grads, ei, ai, dgd=dgd, beta=beta)
        for x, y in zip(fast, slow, strict=True):
            torch.testing.assert_close(x, y)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_one_pass_reads_equal_separate_reads_and_grads(act):
    """memory_forward_many + memory_chunk_grads(read=...) (the mixer's fused path) equal separate
    reads and the unfused gradient factors, on a stack of memories sharing the inputs."""
    state = rand_state((2, 3, 4), 5, 6)
    q, v, k = (torch.randn(2, 3, 1, n, 5, dtype=DT) for n in (3, 4, 4))
    reads, pre = memory_forward_many(state.w1, state.w2, [q, v, k], act)
    for got, z in zip(reads, (q, v, k), strict=True):
        torch.testing.assert_close(got, memory_forward(state.w1, state.w2, z, act))
    fused = memory_chunk_grads(state.w1, state.w2, k, reads[1], act, read=(reads[2], pre[2]))
    plain = memory_chunk_grads(state.w1, state.w2, k, reads[1], act)
    for x, y in zip(fused, plain, strict=True):
        torch.testing.assert_close(x, y)


def gated_delta(s, k, w, b, alpha):
    """Gated DeltaNet S_t = alpha_t S_{t-1} (I - b_t k k^T) + b_t w_t k^T, with dense matrices."""
    eye = torch.eye(k.shape[-1], dtype=DT)
    for t in range(k.shape[-2]):
        kk = k[..., t, :, None] @ k[..., t, None, :]
        s = alpha[..., t, None, None] * s @ (eye - b[..., t, None, None] * kk)
        s = s + b[..., t, None, None] * (w[..., t, :, None] @ k[..., t, None, :])
    return s


@pytest.mark.parametrize("lead", [(), (3,), (2, 2)])
def test_matrix_memory_dgd_dot_is_gated_delta_rule(lead):
    T, dk, dv = 6, 4, 3
    s0 = torch.randn(*lead, dv, dk, dtype=DT)
    k = F.normalize(torch.randn(*lead, T, dk, dtype=DT), dim=-1)
    v = torch.randn(*lead, T, dv, dtype=DT)
    eta, alpha = 0.5 * torch.rand(*lead, T, dtype=DT), 0.5 + 0.5 * torch.rand(*lead, T, dtype=DT)
    got = matrix_memory_dgd_dot(s0, k, v, eta, alpha)
    torch.testing.assert_close(got, gated_delta(s0, k, alpha[..., None] * v, eta / alpha, alpha))
    # the literal "beta = eta / alpha" with an unscaled value is a different recurrence
    assert not torch.allclose(got, gated_delta(s0, k, v, eta / alpha, alpha))


@pytest.mark.parametrize("shape", SHAPES)
def test_update_shapes_and_dtype(shape):
    B, H, d, h = shape
    state = rand_state((B, H), d, h, momentum=True)
    k, grads, eta, alpha = rand_chunk((B, H), 3, d, h)
    out = dgd_chunk_update(state, k, grads, eta, alpha, beta=0.5)
    assert [t.shape for t in out] == [(B, H, d, h), (B, H, h, d)] * 2
    assert all(t.dtype == DT for t in out)
