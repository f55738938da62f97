"""HOPE / Hope-Attention (arXiv 2512.24695 Eq. 94-97): causality, per-sequence state, the CMS
update schedule inside the model (Eq. 71) against an independent computation, update-timing
invariance at zero inner learning rate, the GPU presets' sizes, and a short training run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from nested_learning.config import load_config
from nested_learning.core.cms import CMSLevel
from nested_learning.data import TextDataset, load_text
from nested_learning.models import HopeBlock, HopeLM, count_parameters, create_model

CFG: dict[str, Any] = {
    "d_model": 32,
    "n_layers": 2,
    "n_heads": 2,
    "d_ff": 32,
    "max_seq_len": 64,
    "cms_chunk_sizes": (8, 16, 32),
    "titans_chunk_memory": 4,
    "titans_chunk_other": 8,
}
VARIANTS = ["hope", "hope_attention"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small ops: intra-op threads only add synchronisation on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hope(arch: str = "hope", **overrides: Any) -> HopeLM:
    model = create_model(arch, **{**CFG, **overrides}).double()
    assert isinstance(model, HopeLM)
    return model


def blocks(model: HopeLM) -> list[HopeBlock]:
    return [b for b in model.blocks if isinstance(b, HopeBlock)]


@pytest.mark.parametrize("arch", VARIANTS)
@pytest.mark.parametrize("t", [5, 8, 21])  # inside a segment, at a segment start, later
@pytest.mark.parametrize("train", [False, True])
def test_changing_token_t_never_changes_earlier_outputs(arch: str, t: int, train: bool) -> None:
    # a large inner lr makes the CMS writes visible: they must not leak the future either
    model = hope(arch, cms_inner_lr=0.5).train(train)
    tokens = torch.randint(0, 256, (2, 40))
    changed = tokens.clone()
    changed[:, t] = (changed[:, t] + 1) % 256
    with torch.set_grad_enabled(train):
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=0)
    assert not torch.allclose(a[:, t:], b[:, t:])


@pytest.mark.parametrize("arch", VARIANTS)
def test_cms_learning_inside_forward_changes_later_segments_only(arch: str) -> None:
    model = hope(arch)
    tokens = torch.randint(0, 256, (2, 40))
    with torch.no_grad():
        frozen = hope(arch, cms_inner_lr=0.0)
        frozen.load_state_dict(model.state_dict())
        learning = hope(arch, cms_inner_lr=0.5)
        learning.load_state_dict(model.state_dict())
        a, b = frozen(tokens), learning(tokens)
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=0, atol=0)  # first segment: θ0 in both
    assert (a[:, 8:] - b[:, 8:]).abs().amax(-1).min() > 1e-6  # every later position is affected


@pytest.mark.parametrize("arch", VARIANTS)
@pytest.mark.parametrize("train", [False, True])
def test_each_sequence_evolves_as_if_it_were_alone(arch: str, train: bool) -> None:
    model = hope(arch, cms_inner_lr=0.5).train(train)
    tokens = torch.randint(0, 256, (3, 37))
    with torch.set_grad_enabled(train):
        together = model(tokens)
        alone = torch.cat([model(tokens[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)


def test_no_grad_inference_equals_the_training_forward() -> None:
    model = hope(cms_inner_lr=0.5)
    tokens = torch.randint(0, 256, (2, 30))
    with torch.no_grad():
        inference = model(tokens)
    torch.testing.assert_close(model(tokens), inference)


def test_explicit_next_token_targets_give_the_default_logits() -> None:
    """The last position's target only affects updates after the sequence ends."""
    model = hope(cms_inner_lr=0.5)
    tokens = torch.randint(0, 256, (2, 30))
    targets = torch.cat([tokens[:, 1:], torch.randint(0, 256, (2, 1))], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, targets), model(tokens))
        shifted = model(tokens, torch.roll(targets, 1, dims=1))
    assert not torch.allclose(shifted[:, 8:], model(tokens)[:, 8:])


def test_cms_levels_update_exactly_every_chunk_inside_the_model() -> None:
    model = hope(cms_inner_lr=0.5)
    trace: list[Any] = []
    with torch.no_grad():
        model.forward_online(torch.randint(0, 256, (2, 64)), trace=trace)
    sizes = CFG["cms_chunk_sizes"]
    previous = [b.cms.init_state(2).weights for b in blocks(model)]
    for i, states in enumerate(trace):
        seen = 8 * (i + 1)
        for layer, st in enumerate(states):
            assert st.cms.tokens_seen == seen
            for level, c in enumerate(sizes):
                old, new = previous[layer][level], st.cms.weights[level]
                changed = [not torch.equal(o, n) for o, n in zip(old, new, strict=True)]
                assert changed == [seen % c == 0] * 2, (seen, layer, level)
        previous = [st.cms.weights for st in states]


def test_first_cms_update_is_minus_lr_times_the_summed_segment_gradient() -> None:
    """Eq. 71 against an independent computation: one block, level 1 after C^(1) = 8 tokens is
    θ0 - η Σ_{p<8} ∇ CE(logits_p, token_{p+1}), per sequence."""
    lr = 0.3
    model = hope(n_layers=1, cms_inner_lr=lr)
    block = blocks(model)[0]
    tokens = torch.randint(0, 256, (2, 16))
    trace: list[Any] = []
    with torch.no_grad():
        model.forward_online(tokens, trace=trace)
    level = block.cms.levels[0]
    assert isinstance(level, CMSLevel) and block.titans is not None
    for b in range(2):
        seq = tokens[b : b + 1, :9]
        x = model.tokens(seq[:, :8])
        x = x + block.titans(block.norm(x))[0]
        for lv in block.cms.levels:  # the chain with θ0, written out (Eq. 70)
            assert isinstance(lv, CMSLevel)
            x = x + lv.branch(x, lv.w_in[None], lv.w_out[None])
        loss = F.cross_entropy(model.tokens.logits(x)[0], seq[0, 1:9], reduction="sum")
        g_in, g_out = torch.autograd.grad(loss, [level.w_in, level.w_out])
        w_in, w_out = trace[0][0].cms.weights[0]
        torch.testing.assert_close(w_in[b], level.w_in - lr * g_in)
        torch.testing.assert_close(w_out[b], level.w_out - lr * g_out)


@pytest.mark.parametrize("arch", VARIANTS)
def test_zero_inner_lr_makes_outputs_independent_of_update_timing(arch: str) -> None:
    """η = 0: any CMS schedule (segment length) gives the plain stack Mixer → CMS(θ0), computed
    here over the whole sequence at once with the modules themselves."""
    ref_model = hope(arch, cms_inner_lr=0.0)
    tokens = torch.randint(0, 256, (2, 48))
    x = ref_model.tokens(tokens)
    for block in blocks(ref_model):
        h = block.norm(x)
        mixed = block.titans(h)[0] if block.titans is not None else block.attn(h)[0]  # type: ignore[misc]
        x = block.cms(x + mixed, block.cms.init_state(2))
    expected = ref_model.tokens.logits(x)
    for sizes in [(8, 16, 32), (16, 32, 48), (24, 48, 96)]:
        model = hope(arch, cms_inner_lr=0.0, cms_chunk_sizes=sizes)
        model.load_state_dict(ref_model.state_dict())
        torch.testing.assert_close(model(tokens), expected)


@pytest.mark.parametrize(("preset", "target"), [("medium", 340e6), ("large", 1.3e9)])
def test_gpu_presets_build_on_meta_at_the_paper_sizes(preset: str, target: float) -> None:
    cfg = load_config(preset)
    with torch.device("meta"):
        model = create_model(**cfg.model)
    assert isinstance(model, HopeLM) and model.config.vocab_size == 32000
    assert abs(count_parameters(model) - target) <= 0.1 * target


def test_every_cms_level_of_the_small_preset_is_read() -> None:
    """Zeroing any one level's inner lr changes the logits of a ``train.seq_len`` sequence."""
    cfg = load_config("small")
    torch.manual_seed(0)
    model = create_model(**cfg.model)
    x = torch.randint(0, 256, (1, cfg.train.seq_len), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x)
        for level in range(len(cfg.model["cms_chunk_sizes"])):
            saved = [blk.cms.config for blk in model.blocks]
            for blk, c in zip(model.blocks, saved, strict=True):
                lrs = tuple(0.0 if i == level else lr for i, lr in enumerate(c.inner_lrs))
                blk.cms.config = dataclasses.replace(c, inner_lr=lrs)
            assert not torch.equal(model(x), full), f"CMS level {level} never acts"
            for blk, c in zip(model.blocks, saved, strict=True):
                blk.cms.config = c


@pytest.mark.parametrize("preset", ["small", "medium", "large"])
def test_every_cms_level_of_the_gpu_presets_updates_within_a_sequence(preset: str) -> None:
    """Level l applies its step after token C^(l); it is read iff C^(l) < train.seq_len."""
    cfg = load_config(preset)
    sizes = cfg.model["cms_chunk_sizes"]
    assert max(sizes) < cfg.train.seq_len <= cfg.model["max_seq_len"], (preset, sizes)


@pytest.mark.slow
def test_small_preset_trains_200_steps_on_cpu() -> None:
    cfg = load_config("small")
    torch.manual_seed(0)
    model = create_model(**cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, betas=cfg.train.betas)
    data = TextDataset(load_text(None))
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(200):
        x, y = data.get_batch("train", 8, 64, generator)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(map(lambda v: v == v and abs(v) < float("inf"), losses))
    assert sum(losses[-20:]) / 20 < 0.75 * sum(losses[:5]) / 5


@pytest.mark.parametrize(
    ("field", "value", "titans_field", "titans_value"),
    [
        ("titans_dgd", False, "dgd", False),
        ("titans_retention", False, "retention", False),
        ("titans_self_modifying", False, "self_modifying", False),
        ("titans_static", ["k", "v"], "static", ("k", "v")),
    ],
)
def test_ablation_switches_reach_the_mixer(field, value, titans_field, titans_value):
    """Table 6's ablations are plain config fields (YAML lists become tuples)."""
    model = create_model(arch="hope", d_model=16, n_layers=1, n_heads=2, d_ff=16, **{field: value})
    assert all(getattr(b.titans.config, titans_field) == titans_value for b in model.blocks)
