"""Test-time memory switches (nested_learning.memory_use), the static Hope, the negative-eigenvalue
step, and the exp2 representability argument (docs/ALGORITHMS.md, "exp2")."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nested_learning.core.memory import FastWeights, MemoryGrads, dgd_chunk_update
from nested_learning.memory_use import (
    MEMORY_SETTINGS,
    gate_statistics,
    has_memories,
    memories_off,
    memory_ablation,
)
from nested_learning.models import create_model
from nested_learning.synthetic import formal_language_batch

SMALL: dict[str, Any] = {
    "arch": "hope",
    "vocab_size": 16,
    "d_model": 16,
    "n_layers": 2,
    "n_heads": 2,
    "d_ff": 16,
    "max_seq_len": 64,
    "titans_chunk_memory": 2,
    "titans_chunk_other": 4,
    "cms_chunk_sizes": (4, 8),
    "cms_inner_lr": 0.1,
    "eta_scale": 0.5,
}


def hope(**kw: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(**{**SMALL, **kw}).double()


def tokens(t: int = 24) -> torch.Tensor:
    return torch.randint(0, 16, (3, t), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("titans", "cms", "built_with"),
    [
        (True, False, {"titans_writes": False}),
        (False, True, {"cms_inner_lr": 0.0}),
        (True, True, {"titans_writes": False, "cms_inner_lr": 0.0}),
    ],
)
def test_switching_memories_off_equals_a_model_built_without_them(
    titans: bool, cms: bool, built_with: dict[str, Any]
) -> None:
    model, twin, x = hope(), hope(**built_with), tokens()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        full = model(x)
        with memories_off(model, titans=titans, cms=cms):
            off = model(x)
        assert torch.equal(off, twin(x))
        assert not torch.allclose(off, full)  # each memory matters at random weights
        assert torch.equal(model(x), full)  # the configs are back


def test_configs_come_back_after_an_exception() -> None:
    model = hope()
    configs = [m.config for m in model.modules() if hasattr(m, "config")]
    with pytest.raises(RuntimeError, match="boom"), memories_off(model, titans=True, cms=True):
        raise RuntimeError("boom")
    assert [m.config for m in model.modules() if hasattr(m, "config")] == configs


def test_a_static_hope_never_writes_its_titans_memories() -> None:
    model = hope(titans_writes=False, cms_inner_lr=0.0)
    with torch.no_grad():
        _, states = model.forward_online(tokens())
    for block, state in zip(model.blocks, states, strict=True):
        fresh = block.titans.init_state(3, dtype=torch.float64)
        for name, mem in state.mixer.memories.items():
            assert torch.equal(mem.w1, fresh.memories[name].w1)
            assert torch.equal(mem.w2, fresh.memories[name].w2)


def test_memory_ablation_skips_the_memories_a_model_lacks() -> None:
    torch.manual_seed(0)
    titans = create_model(arch="titans", vocab_size=16, d_model=16, n_layers=1, n_heads=2, d_ff=16)
    transformer = create_model(arch="transformer", vocab_size=16, d_model=16, n_layers=1, d_ff=16)
    x = tokens()

    def metric(m: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(m(x).square().mean())

    out = memory_ablation(titans, metric)
    assert set(out) == set(MEMORY_SETTINGS) and out["cms_off"] is None and out["all_off"] is None
    assert out["titans_off"] != out["with_memory"]
    assert has_memories(transformer) == {"titans": False, "cms": False}
    assert list(memory_ablation(transformer, metric).values()) == [
        metric(transformer),
        None,
        None,
        None,
    ]


@pytest.mark.parametrize("negative", [False, True])
def test_gate_statistics_lie_within_their_bounds(negative: bool) -> None:
    kw = {"momentum": False, "titans_negative_eigenvalues": True} if negative else {}
    model = hope(**kw)
    stats = gate_statistics(model, lambda m: m(tokens()))
    assert stats["eta_bound"] == (2.0 if negative else 0.5)
    assert 0 < stats["eta_mean"] <= stats["eta_max"] <= stats["eta_bound"]
    assert 0 < stats["alpha_mean"] < 1
    assert "_gates" not in vars(model.blocks[0].titans)  # the class's method is back
    transformer = create_model(arch="transformer", vocab_size=16, d_model=16, n_layers=1, d_ff=16)
    assert gate_statistics(transformer, lambda m: m(tokens())) == {}


def test_gate_statistics_count_non_finite_tokens_and_skip_them() -> None:
    model = hope()
    clean = gate_statistics(model, lambda m: m(tokens()))
    with torch.no_grad():  # the last layer's eta readout overflows; the first layer is untouched
        model.blocks[1].titans.readout_b.eta.fill_(float("nan"))
    stats = gate_statistics(model, lambda m: m(tokens()))
    assert stats["nonfinite"] == pytest.approx(0.5) and clean["nonfinite"] == 0.0
    assert stats["eta_mean"] is not None and 0 < stats["eta_mean"] <= stats["eta_max"] <= 0.5
    with torch.no_grad():
        model.blocks[0].titans.readout_b.eta.fill_(float("nan"))
    broken = gate_statistics(model, lambda m: m(tokens()))
    assert broken["nonfinite"] == 1.0
    assert broken["eta_mean"] is broken["eta_max"] is broken["alpha_mean"] is None


def test_negative_eigenvalues_need_plain_dgd_without_momentum() -> None:
    with pytest.raises(ValueError, match="titans_negative_eigenvalues needs momentum: false"):
        create_model(**SMALL, titans_negative_eigenvalues=True)
    model = hope(momentum=False, titans_negative_eigenvalues=True)
    assert all(b.titans.config.negative_eigenvalues for b in model.blocks)


@pytest.mark.parametrize(("beta", "alpha"), [(1.8, 1.0), (1.5, 0.9), (0.05, 1.0)])
def test_the_transition_along_k_has_eigenvalue_alpha_minus_beta(beta: float, alpha: float) -> None:
    """With a zero gradient, one write maps ``W2 k`` to ``(alpha - beta) W2 k``: the step β ∈
    (0, 2) of the ablation reaches (-1, 0), DGD's η' = η/(1+η) < 1 never goes below α - 1."""
    g = torch.Generator().manual_seed(0)
    d, h = 6, 5

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    k = torch.nn.functional.normalize(rand(1, 1, d), dim=-1)  # [B, C, d], one token
    w1, w2 = rand(1, d, h), rand(1, h, d)
    zero = MemoryGrads(*(torch.zeros(1, 1, n, dtype=torch.float64) for n in (d, h, h)))
    step = torch.full((1, 1), beta, dtype=torch.float64)
    keep = torch.full((1, 1), alpha, dtype=torch.float64)
    new = dgd_chunk_update(FastWeights(w1, w2), k, zero, step, keep)
    torch.testing.assert_close(new.w2 @ k[0, 0], (alpha - beta) * (w2 @ k[0, 0]))


# --------------------------------------------------------------------------- exp2 representability
def aa_star_outputs(chunk_memory: int, chunk_other: int) -> torch.Tensor:
    """Hope's logits on ``BOS a a a … a`` (a 24-symbol (aa)* string) at random weights."""
    torch.manual_seed(0)
    model = create_model(
        arch="hope",
        vocab_size=8,
        d_model=32,
        n_layers=1,
        n_heads=2,
        d_ff=64,
        max_seq_len=32,
        titans_chunk_memory=chunk_memory,
        titans_chunk_other=chunk_other,
        cms_chunk_sizes=(8,),
        cms_inner_lr=0.0,
        eta_scale=0.1,
    )
    b = formal_language_batch("aa_star", 1, 24, 24, torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(b.inputs)[0]


def test_exp2_setup_gives_every_position_of_aa_star_its_own_output() -> None:
    out = aa_star_outputs(chunk_memory=1, chunk_other=4)  # exp2's Setup
    for t in range(4, out.shape[0] - 1):
        assert not torch.allclose(out[t], out[t + 1]), t


def test_the_old_exp2_setup_forced_neighbouring_outputs_to_be_equal() -> None:
    """Reproduces the flaw: with chunk 2 and the window-4 conv, positions 2c and 2c+1 of
    ``aaaa…`` see the same window and the same memory snapshot, for any weights."""
    out = aa_star_outputs(chunk_memory=2, chunk_other=2)
    for t in range(4, out.shape[0] - 1, 2):
        torch.testing.assert_close(out[t], out[t + 1], rtol=0, atol=1e-6)
