"""The language models (HOPE, Hope-Attention, Titans, Transformer++) through ``create_model``:
shapes, gradient flow, devices, a training step, bad input, config errors, and the shared pieces
(RoPE, KV-cached attention) against independent computations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from nested_learning.config import ConfigError
from nested_learning.core.titans import SelfModifyingTitans
from nested_learning.data import encode
from nested_learning.models import count_parameters, create_model, matched_config
from nested_learning.models.transformer import CausalSelfAttention, Rotary
from nested_learning.sampling import generate

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
HOPE_TINY: dict[str, Any] = {
    "d_model": 32,
    "n_layers": 2,
    "n_heads": 2,
    "d_ff": 32,
    "max_seq_len": 64,
    "cms_chunk_sizes": (8, 16, 32),
    "titans_chunk_memory": 4,
    "titans_chunk_other": 8,
}
TINY: dict[str, dict[str, Any]] = {
    "hope": HOPE_TINY,
    "hope_attention": HOPE_TINY,
    "titans": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "max_seq_len": 64},
    "transformer": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "max_seq_len": 64},
}
ARCHS = list(TINY)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small ops: intra-op threads only add synchronisation on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(arch: str, **overrides: Any) -> torch.nn.Module:
    return create_model(arch, **{**TINY[arch], **overrides})


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("batch", "seq_len"), [(1, 1), (3, 17), (2, 64)])
def test_logits_shape(arch: str, batch: int, seq_len: int) -> None:
    tokens = torch.randint(0, 256, (batch, seq_len))
    assert tiny(arch)(tokens).shape == (batch, seq_len, 256)


@pytest.mark.parametrize(
    ("arch", "overrides"),
    [
        ("hope", {}),
        ("hope", {"cms_first_order": False}),
        ("hope", {"cms_variant": "independent"}),
        ("hope_attention", {}),
        ("titans", {}),
        ("transformer", {}),
    ],
)
def test_every_parameter_receives_a_gradient(arch: str, overrides: dict[str, Any]) -> None:
    """Incl. the meta-learned initial Titans memories and every CMS level's θ0 (Eq. 73)."""
    model = tiny(arch, **overrides)
    names = {n for n, _ in model.named_parameters()}
    if arch.startswith("hope"):
        assert any(".cms.levels.2.w_in" in n for n in names)
    if arch in ("hope", "titans"):
        assert any("init_w1" in n for n in names) and any("init_w2" in n for n in names)
    model(torch.randint(0, 256, (2, 40))).logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", ARCHS)
def test_outputs_live_on_the_model_device(device: str, arch: str) -> None:
    model = tiny(arch).to(device)
    logits = model(torch.randint(0, 256, (2, 20), device=device))
    assert logits.device.type == device and torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_training_steps_lower_the_loss_on_a_tiny_task(arch: str) -> None:
    model = tiny(arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))
    y = torch.roll(x, -1, dims=1)
    before = [p.detach().clone() for p in model.parameters()]

    def loss_fn() -> torch.Tensor:
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

    first = loss_fn().item()
    for _ in range(30):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert loss_fn().item() < 0.6 * first  # memorises a fixed batch


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (torch.randint(0, 256, (1, 65)), "exceeds model.max_seq_len=64"),
        (torch.tensor([[1, 2, 256]]), r"token ids must be in \[0, 256\)"),
        (torch.tensor([[-1, 2]]), r"token ids must be in \[0, 256\)"),
        (torch.randint(0, 256, (8,)), r"tokens must be \[batch, time\]"),
        (torch.zeros(1, 4), "integer tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(arch: str, tokens: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(arch)(tokens)


@pytest.mark.parametrize(
    ("arch", "kwargs", "field"),
    [
        ("hope", {"n_heads": 5}, "model.n_heads"),
        ("hope", {"d_model": 0}, "model.d_model"),
        ("hope", {"cms_chunk_sizes": (8, 12)}, "model.cms_chunk_sizes"),
        ("hope", {"cms_chunk_sizes": (0, 8)}, "model.cms_chunk_sizes"),
        ("hope", {"titans_chunk_memory": 3}, "model.titans_chunk_memory"),
        ("hope", {"titans_chunk_other": 16}, "model.titans_chunk_other"),
        ("hope", {"cms_inner_lr": -1.0}, "model.cms_inner_lr"),
        ("hope", {"cms_inner_lr": (0.1, 0.1)}, "model.cms_inner_lr"),
        ("hope", {"cms_variant": "parallel"}, "model.cms_variant"),
        ("hope", {"variant": "hope_attention"}, "model.variant"),
        ("hope", {"titans_static": ("q",)}, "model.titans_static"),
        ("hope", {"titans_static": ("k",), "titans_self_modifying": False}, "model.titans_static"),
        ("hope", {"titans_compile": True, "cms_first_order": False}, "model.titans_compile"),
        ("hope_attention", {"titans_compile": True}, "model.titans_compile"),
        ("hope_attention", {"d_model": 30, "n_heads": 2}, "model.d_model"),
        ("titans", {"chunk_size": 0}, "model.chunk_size"),
        ("transformer", {"d_ff": -4}, "model.d_ff"),
    ],
)
def test_inconsistent_configs_name_the_field(arch: str, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        tiny(arch, **kwargs)


@pytest.mark.parametrize(("arch", "flag"), [("hope", "titans_compile"), ("titans", "compile")])
def test_compile_flag_reaches_every_titans_mixer(arch: str, flag: str) -> None:
    # the compiled mixer itself: test_titans.py::test_compiled_mixer_equals_eager
    for on in (False, True):
        model = tiny(arch, **{flag: on})
        mixers = [m for m in model.modules() if isinstance(m, SelfModifyingTitans)]
        assert len(mixers) == TINY[arch]["n_layers"]
        assert all(m.config.compile is on for m in mixers)


def test_unknown_arch_and_key_are_config_errors_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="hope, hope_attention, titans, transformer"):
        create_model("mamba")
    with pytest.raises(ConfigError, match=r"unknown key 'model\.d_modle'.*d_model"):
        create_model("hope", d_modle=3)


@pytest.mark.parametrize("arch", ["transformer", "titans", "hope_attention"])
def test_matched_config_is_within_ten_percent(arch: str) -> None:
    target = count_parameters(create_model())  # the small HOPE defaults
    kwargs = matched_config(arch, target, d_model=128, n_layers=4, n_heads=4)
    assert abs(count_parameters(create_model(**kwargs)) - target) <= 0.1 * target


def test_tied_embeddings_are_counted_once() -> None:
    model = tiny("transformer")
    manual = sum(p.numel() for n, p in model.named_parameters())
    assert count_parameters(model) == manual
    assert model.tokens.embed.weight.data_ptr() == model.tokens.embed.weight.data_ptr()


def test_rope_scores_depend_only_on_the_relative_position() -> None:
    rope = Rotary(8, 64).double()
    q, k = torch.randn(2, 1, 1, 8, dtype=torch.float64).unbind(0)
    score = [(rope(q, m) * rope(k, m - 3)).sum().item() for m in (3, 10, 40)]
    assert score == pytest.approx([score[0]] * 3) and score[0] != pytest.approx((q * k).sum())
    # the angle of channel pair i at position p is p · 10000^(-2i/d)
    x = torch.zeros(1, 1, 1, 8, dtype=torch.float64)
    x[..., 1] = 1.0  # pair i = 1: channels (1, 5)
    out = rope(x, 7)
    theta = 7 * 10000 ** (-2 / 8)
    assert out[..., 1].item() == pytest.approx(torch.cos(torch.tensor(theta)).item())
    assert out[..., 5].item() == pytest.approx(torch.sin(torch.tensor(theta)).item())


def test_kv_cached_segments_equal_full_causal_attention() -> None:
    attn = CausalSelfAttention(16, 2, 64, 10000.0).double()
    x = torch.randn(2, 20, 16, dtype=torch.float64)
    full, _ = attn(x)
    cache, pieces = None, []
    for s, e in [(0, 7), (7, 8), (8, 20)]:
        y, cache = attn(x[:, s:e], cache)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), full)
    # and the full pass equals an explicit softmax with a causal mask (independent computation)
    q, k, v = attn.qkv(x).view(2, 20, 3, 2, 8).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.rotary(q), attn.rotary(k)
    scores = (q @ k.transpose(-1, -2)) / 8**0.5
    scores = scores.masked_fill(torch.ones(20, 20, dtype=torch.bool).triu(1), float("-inf"))
    ref = attn.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 20, 16))
    torch.testing.assert_close(full, ref)


@pytest.mark.parametrize("arch", ["hope", "hope_attention"])
def test_generate_works_and_greedy_is_deterministic(arch: str) -> None:
    model = tiny(arch)
    prompt = encode("hello").unsqueeze(0)
    a = generate(model, prompt, 6, context_len=64, temperature=0)
    b = generate(model, prompt, 6, context_len=64, temperature=0)
    assert a.shape == (1, 11) and torch.equal(a, b) and torch.equal(a[:, :5], prompt)


def test_hope_refuses_inference_mode_with_a_clear_error() -> None:
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"torch\.no_grad"):
        tiny("hope")(torch.randint(0, 256, (1, 8)))
