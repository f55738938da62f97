"""Tests for the Continuum Memory System (arXiv 2512.24695 Eq. 70-74).

The reference below is written independently of the module: one sequence at a time, per-token
loops for the norm, a hand-written GELU, and Eq. 71 as a literal *window* sum of the last C tokens'
gradients (instead of the module's running accumulator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from nested_learning.core.cms import VARIANTS, CMSConfig, ContinuumMemory, run_online

D, H, B, T = 4, 6, 3, 16
DT = torch.float64


def make(variant: str = "sequential", chunks=(2, 4, 8), lr=0.05, first_order=True, seed=0):
    torch.manual_seed(seed)
    cms = ContinuumMemory(
        CMSConfig(D, chunks, hidden=H, inner_lr=lr, variant=variant, first_order=first_order)
    ).to(DT)
    with torch.no_grad():  # non-trivial norm gains and mixture so the reference must use them
        for lv in cms.levels:
            lv.norm.weight.uniform_(0.5, 1.5)
        if cms.agg_logits is not None:
            cms.agg_logits.normal_()
    return cms


def data(seed: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g, dtype=DT), torch.randn(B, T, D, generator=g, dtype=DT)


def mse_loss(target: Tensor):
    """Toy task loss, summed over batch and tokens (the CMS contract)."""
    return lambda y, s, e: ((y - target[:, s:e]) ** 2).sum()


# ------------------------------------------------------------------ independent reference
def gelu(z: Tensor) -> Tensor:
    return 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))


def ref_branch(x: Tensor, w_in: Tensor, w_out: Tensor, gain: Tensor, eps: float) -> Tensor:
    rows = [x[t] / torch.sqrt((x[t] ** 2).mean() + eps) * gain for t in range(x.shape[0])]
    return gelu(torch.stack(rows) @ w_in.T) @ w_out.T


def ref_read(cms: ContinuumMemory, x: Tensor, ws: list[list[Tensor]]) -> Tensor:
    """Eq. 70 (chain) or Eq. 74 (parallel, softmax mix) for one sequence x [T, d]."""
    eps, gains = cms.config.norm_eps, [lv.norm.weight for lv in cms.levels]
    if cms.config.variant != "independent":
        for (w_in, w_out), g in zip(ws, gains, strict=True):
            x = x + ref_branch(x, w_in, w_out, g, eps)
        return x
    a = cms.agg_logits.detach()
    mix = torch.exp(a) / torch.exp(a).sum()
    return x + sum(m * ref_branch(x, *w, g, eps) for m, w, g in zip(mix, ws, gains, strict=True))


@dataclass
class RefRun:
    y: Tensor  # [T, d]
    weights: list[list[Tensor]]  # final fast weights per level
    grads: list[list[list[Tensor]]]  # per segment, per level, [dW_in, dW_out]
    after: list[list[list[Tensor]]]  # fast weights after each segment


def ref_run(cms: ContinuumMemory, x: Tensor, target: Tensor, n: int) -> RefRun:
    """One sequence, segments of n tokens; level l applies -η Σ (last C_l tokens' grads)."""
    cfg = cms.config
    theta0 = [[lv.w_in.detach().clone(), lv.w_out.detach().clone()] for lv in cms.levels]
    ws = [[w.clone() for w in lvl] for lvl in theta0]
    hist: list[list[list[Tensor]]] = [[] for _ in ws]  # per level, per segment since last reset
    out, grads, after = [], [], []
    for s in range(0, x.shape[0], n):
        leaves = [[w.clone().requires_grad_(True) for w in lvl] for lvl in ws]
        y = ref_read(cms, x[s : s + n], leaves)
        loss = ((y - target[s : s + n]) ** 2).sum()
        g = torch.autograd.grad(loss, [w for lvl in leaves for w in lvl])
        seg = [[g[2 * i], g[2 * i + 1]] for i in range(len(ws))]
        out.append(y.detach())
        grads.append(seg)
        seen = s + n
        for ell, c in enumerate(cfg.chunk_sizes):
            hist[ell].append(seg[ell])
            if seen % c == 0:
                window = hist[ell][-(c // n) :]  # exactly the C tokens t = i-C+1 … i
                for j in range(2):
                    ws[ell][j] = ws[ell][j] - cfg.inner_lrs[ell] * sum(w[j] for w in window)
        if cfg.variant == "nested":
            for ell in range(len(ws) - 1):
                if seen % cfg.chunk_sizes[ell + 1] == 0:
                    ws[ell] = [w.clone() for w in theta0[ell]]
                    hist[ell] = []
        after.append([[w.clone() for w in lvl] for lvl in ws])
    return RefRun(torch.cat(out), ws, grads, after)


def drive(cms: ContinuumMemory, x: Tensor, target: Tensor, n: int):
    """Drive the module step by step, returning outputs and the fast weights after each step."""
    state, outs, snaps = cms.init_state(x.shape[0]), [], []
    for s in range(0, x.shape[1], n):
        st = cms.prepare_for_inner_grad(state)
        y = cms(x[:, s : s + n], st)
        state = cms.step(st, cms.inner_grads(mse_loss(target)(y, s, s + n), st), n)
        outs.append(y.detach())
        snaps.append([[w.detach().clone() for w in lvl] for lvl in state.weights])
    return torch.cat(outs, 1), state, snaps


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("variant", ["sequential", "independent"])
@pytest.mark.parametrize("n", [1, 2])
def test_levels_change_exactly_at_their_chunk_boundaries(variant, n):
    cms, (x, tgt) = make(variant), data()
    _, _, snaps = drive(cms, x, tgt, n)
    prev = [[lv.w_in.detach(), lv.w_out.detach()] for lv in cms.levels]
    for i, snap in enumerate(snaps):
        seen = (i + 1) * n
        for ell, c in enumerate(cms.config.chunk_sizes):
            for b in range(B):
                moved = not torch.equal(snap[ell][0][b], prev[ell][0].expand(B, -1, -1)[b])
                assert moved == (seen % c == 0), (seen, ell, b)
        prev = snap


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n", [1, 2])
def test_matches_reference_window_sum(variant, n):
    """Outputs and every post-step state equal the per-sequence reference, whose updates are
    η * (sum of exactly the C per-token/segment gradients of the chunk)."""
    cms, (x, tgt) = make(variant), data()
    y, _, snaps = drive(cms, x, tgt, n)
    for b in range(B):
        ref = ref_run(cms, x[b], tgt[b], n)
        torch.testing.assert_close(y[b], ref.y, rtol=1e-10, atol=1e-12)
        for snap, ref_snap in zip(snaps, ref.after, strict=True):
            for lvl, ref_lvl in zip(snap, ref_snap, strict=True):
                for w, rw in zip(lvl, ref_lvl, strict=True):
                    torch.testing.assert_close(w[b], rw, rtol=1e-10, atol=1e-12)


def test_single_level_update_is_eta_times_sum_of_c_token_grads():
    """Eq. 71 with the [fix]: after the first boundary θ̃ = θ0 - η Σ_{t=1}^{C} ∇L_t (C terms)."""
    c, eta = 4, 0.1
    cms, (x, tgt) = make(chunks=(c,), lr=eta), data()
    _, state, _ = drive(cms, x[:, :c], tgt[:, :c], 1)
    w0 = cms.levels[0].w_in.detach()
    for b in range(B):
        token_grads = []
        for t in range(c):
            w = w0.clone().requires_grad_(True)
            lv = cms.levels[0]
            y = x[b, t] + ref_branch(x[b, t : t + 1], w, lv.w_out.detach(), lv.norm.weight, 1e-6)
            token_grads.append(torch.autograd.grad(((y - tgt[b, t]) ** 2).sum(), w)[0])
        expected = w0 - eta * torch.stack(token_grads).sum(0)
        torch.testing.assert_close(state.weights[0][0][b], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_inner_lr_is_the_plain_mlp_chain(variant):
    cms, (x, tgt) = make(variant, lr=0.0), data()
    y, state, _ = run_online(cms, x, mse_loss(tgt))
    theta0 = [[lv.w_in.detach(), lv.w_out.detach()] for lv in cms.levels]
    for b in range(B):
        torch.testing.assert_close(y[b], ref_read(cms, x[b], theta0), rtol=1e-10, atol=1e-12)
    for lvl, ref_lvl in zip(state.weights, theta0, strict=True):
        for w, rw in zip(lvl, ref_lvl, strict=True):
            torch.testing.assert_close(w, rw.expand_as(w), rtol=0, atol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_sequence_evolves_as_if_alone(variant):
    cms, (x, tgt) = make(variant), data()
    y, state, _ = run_online(cms, x, mse_loss(tgt))
    for b in range(B):
        yb, sb, _ = run_online(cms, x[b : b + 1], mse_loss(tgt[b : b + 1]))
        torch.testing.assert_close(y[b : b + 1], yb, rtol=1e-10, atol=1e-12)
        for w, wb in zip(cms.fast_weights(state), cms.fast_weights(sb), strict=True):
            torch.testing.assert_close(w[b : b + 1], wb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("t", [1, 5, 6, 9])
def test_causal_under_next_token_targets(variant, t):
    """Targets of segment [s, e) are x[s+1 … e] (≤ the segment end), so perturbing token t must
    leave every output at positions < t unchanged — including those in t's own segment."""
    cms, (x, _) = make(variant, lr=0.2), data()

    def ntp(inp: Tensor):
        tgt = torch.cat([inp[:, 1:], torch.zeros_like(inp[:, :1])], 1)
        return lambda y, s, e: ((y - tgt[:, s:e]) ** 2).sum()

    x2 = x.clone()
    x2[:, t] += 1.0
    y1, _, _ = run_online(cms, x, ntp(x))
    y2, _, _ = run_online(cms, x2, ntp(x2))
    torch.testing.assert_close(y1[:, :t], y2[:, :t], rtol=0, atol=0)
    assert not torch.allclose(y1[:, t:], y2[:, t:])
    # the perturbation reaches later segments through the writes (not only through position t)
    assert not torch.allclose(y1[:, 12:] - x[:, 12:], y2[:, 12:] - x2[:, 12:])


def test_nested_resets_child_when_parent_updates():
    """Chunks (2, 4, 8): level 0 is back at θ0 whenever level 1 updates (every 4 tokens), level 1
    whenever level 2 updates (every 8); the slowest level is never reset."""
    cms, (x, tgt) = make("nested"), data()
    _, state, snaps = drive(cms, x, tgt, 2)
    theta0 = [lv.w_in.detach().expand(B, -1, -1) for lv in cms.levels]
    for i, snap in enumerate(snaps):
        seen = 2 * (i + 1)
        expected_at_init = [seen % 4 < 2, seen % 8 < 4, seen < 8]
        for ell in range(3):
            assert torch.equal(snap[ell][0], theta0[ell]) == expected_at_init[ell], (seen, ell)
    assert all(torch.count_nonzero(a) == 0 for a in state.accum[0])  # pending step dropped


def test_nested_differs_from_sequential_only_after_first_reset():
    (x, tgt) = data()
    ys = {v: drive(make(v), x, tgt, 2)[0] for v in ("sequential", "nested")}
    # First reset of level 0 happens when level 1 updates at token 4: outputs agree before it.
    torch.testing.assert_close(ys["sequential"][:, :4], ys["nested"][:, :4], rtol=0, atol=0)
    assert not torch.allclose(ys["sequential"][:, 4:], ys["nested"][:, 4:])


def test_independent_aggregation_is_softmax_weighted_sum_of_parallel_levels():
    cms, (x, _) = make("independent"), data()
    state = cms.init_state(B)
    y = cms(x, state)
    a = cms.agg_logits.detach()
    w = torch.exp(a - a.max()) / torch.exp(a - a.max()).sum()
    for b in range(B):
        expected = x[b].clone()
        for ell, lv in enumerate(cms.levels):  # every level reads the *same* input x
            branch = ref_branch(x[b], lv.w_in.detach(), lv.w_out.detach(), lv.norm.weight, 1e-6)
            expected = expected + w[ell] * branch
        torch.testing.assert_close(y[b], expected, rtol=1e-10, atol=1e-12)
    y.sum().backward()
    assert cms.agg_logits.grad is not None and cms.agg_logits.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_first_order_outer_grad_is_sum_of_read_grads(variant):
    """θ̃ = θ0 + Δ with Δ detached ⇒ ∂ΣL/∂θ0 = Σ_segments Σ_batch ∂L_seg/∂θ̃."""
    cms, (x, tgt) = make(variant), data()
    _, _, total = run_online(cms, x, mse_loss(tgt))
    total.backward()
    for ell, lv in enumerate(cms.levels):
        for j, p in enumerate((lv.w_in, lv.w_out)):
            expected = sum(g[ell][j] for b in range(B) for g in ref_run(cms, x[b], tgt[b], 2).grads)
            torch.testing.assert_close(p.grad, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("variant", VARIANTS)
def test_second_order_outer_grad_matches_finite_differences(variant):
    cms = make(variant, chunks=(2, 4), lr=0.1, first_order=False)
    x, tgt = (v[:2, :8] for v in data())
    _, _, total = run_online(cms, x, mse_loss(tgt))
    total.backward()

    def loss_at(p: Tensor, idx: tuple[int, int], h: float) -> float:
        with torch.no_grad():
            p[idx] += h
            value = run_online(cms, x, mse_loss(tgt))[2].item()
            p[idx] -= h
        return value

    h = 1e-6
    for lv in cms.levels:
        for p in (lv.w_in, lv.w_out):
            for idx in [(0, 0), (1, 2), (3, 1)]:
                fd = (loss_at(p, idx, h) - loss_at(p, idx, -h)) / (2 * h)
                assert p.grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_inference_under_no_grad_matches_training_numerics():
    cms, (x, tgt) = make("nested"), data()
    y_train, s_train, _ = run_online(cms, x, mse_loss(tgt))
    with torch.no_grad():
        y_inf, s_inf, _ = run_online(cms, x, mse_loss(tgt))
    assert not y_inf.requires_grad
    torch.testing.assert_close(y_inf, y_train.detach(), rtol=0, atol=0)
    for w, wi in zip(cms.fast_weights(s_train), cms.fast_weights(s_inf), strict=True):
        torch.testing.assert_close(wi, w.detach(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_sizes": (2, 0)}, "chunk_sizes"),
        ({"chunk_sizes": (-2, 4)}, "chunk_sizes"),
        ({"chunk_sizes": (2, 5)}, "chunk_sizes"),
        ({"chunk_sizes": ()}, "chunk_sizes"),
        ({"inner_lr": (0.1,)}, "inner_lr"),
        ({"inner_lr": -1.0}, "inner_lr"),
        ({"hidden": (4, 4, 4)}, "hidden"),
        ({"hidden": 0}, "hidden"),
        ({"hidden": None, "hidden_mult": 0.0}, "hidden_mult"),
        ({"variant": "parallel"}, "variant"),
        ({"variant": "nested", "chunk_sizes": (2, 6, 8)}, "chunk_sizes"),
        ({"d_model": 0}, "d_model"),
        ({"norm_eps": 0.0}, "norm_eps"),
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, field):
    base = {"d_model": 4, "chunk_sizes": (2, 4), "hidden": 6, "inner_lr": 0.1}
    with pytest.raises(ValueError, match=field):
        CMSConfig(**{**base, **kwargs})


def test_config_accepts_lists_and_per_level_values():
    cfg = CMSConfig(4, [2, 4], hidden=[3, 5], inner_lr=[0.1, 0.0], variant="nested")
    assert cfg.chunk_sizes == (2, 4) and cfg.hidden_sizes == (3, 5) and cfg.inner_lrs == (0.1, 0.0)
    assert CMSConfig(4, (2,), hidden_mult=1.5).hidden_sizes == (6,)


def test_step_rejects_segments_crossing_the_fast_chunk_and_wrong_grads():
    cms, (x, tgt) = make(), data()
    state = cms.init_state(B)
    grads = cms.inner_grads(mse_loss(tgt)(cms(x[:, :1], state), 0, 1), state)
    state = cms.step(state, grads, 1)
    with pytest.raises(ValueError, match="n_tokens"):
        cms.step(state, grads, 2)  # tokens 1..2 straddle the boundary at 2
    with pytest.raises(ValueError, match="gradients"):
        cms.step(state, grads[:-1], 1)
    with pytest.raises(ValueError, match="batch size"):
        cms(x[:1], state)
