"""Tests of the example model and data: REPLACE them along with the model, keeping the kinds of
check (shapes, gradient flow, device placement, equations against an independent computation,
causality, a training step, loss going down, bad input)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nested_learning.core.attention import (
    MultiHeadAttention,
    scaled_dot_product_attention,
)
from nested_learning.data import TextDataset, decode, encode
from nested_learning.models import create_model
from nested_learning.models.transformer import sinusoidal_positions
from nested_learning.sampling import generate

DEVICES = (
    ["cpu"]
    + (["cuda"] if torch.cuda.is_available() else [])
    + (["mps"] if torch.backends.mps.is_available() else [])
)
TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "max_seq_len": 64}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("seq_len", [1, 17, 64])
@pytest.mark.parametrize("norm_first", [False, True])
def test_logits_shape(batch: int, seq_len: int, norm_first: bool) -> None:
    model = create_model(**TINY, norm_first=norm_first)
    tokens = torch.randint(0, 256, (batch, seq_len))
    assert model(tokens).shape == (batch, seq_len, 256)


def test_every_parameter_receives_a_gradient() -> None:
    model = create_model(**TINY)
    model(torch.randint(0, 256, (2, 16))).logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("device", DEVICES)
def test_outputs_live_on_the_model_device(device: str) -> None:
    model = create_model(**TINY).to(device)
    logits = model(torch.randint(0, 256, (2, 8), device=device))
    assert logits.device.type == device


@pytest.mark.parametrize("causal", [True, False])
def test_eq1_matches_an_independent_softmax_attention(causal: bool) -> None:
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, causal=causal), expected)


def test_fused_multihead_attention_equals_eq1_per_head() -> None:
    mha = MultiHeadAttention(d_model=16, n_heads=4).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    q, k, v = mha.qkv(x).view(2, 7, 3, 4, 4).unbind(dim=2)
    heads = scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    expected = mha.out(heads.transpose(1, 2).reshape(2, 7, 16))
    torch.testing.assert_close(mha(x), expected)


def test_positional_encoding_formula() -> None:
    table = sinusoidal_positions(50, 16)
    pos, i = 7, 3
    assert table[pos, 2 * i].item() == pytest.approx(
        math.sin(pos / 10000 ** (2 * i / 16)), abs=1e-6
    )
    assert table[pos, 2 * i + 1].item() == pytest.approx(
        math.cos(pos / 10000 ** (2 * i / 16)), abs=1e-6
    )


def test_causality_future_tokens_do_not_change_past_logits() -> None:
    model = create_model(**TINY).eval()
    tokens = torch.randint(0, 256, (1, 20))
    changed = tokens.clone()
    changed[0, 12] = (changed[0, 12] + 1) % 256
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_a_training_step_changes_the_weights_and_lowers_the_loss_on_a_tiny_task() -> None:
    model = create_model(**TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))
    y = torch.roll(x, -1, dims=1)

    def loss_fn() -> torch.Tensor:
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

    first = loss_fn().item()
    for _ in range(40):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    assert loss_fn().item() < 0.5 * first  # memorises a fixed batch


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (torch.randint(0, 256, (1, 65)), "exceeds model.max_seq_len=64"),
        (torch.tensor([[1, 2, 256]]), r"token ids must be in \[0, 256\)"),
        (torch.tensor([[-1, 2]]), r"token ids must be in \[0, 256\)"),
        (torch.randint(0, 256, (8,)), r"tokens must be \[batch, time\]"),
    ],
)
def test_bad_input_raises_a_clear_error(tokens: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model(**TINY)(tokens)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n_heads": 5}, "n_heads"), ({"d_model": 0}, "d_model"), ({"dropout": 1.5}, "dropout")],
)
def test_inconsistent_sizes_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"model.{field}"):
        create_model(**{**TINY, **kwargs})


def test_generate_appends_tokens_and_greedy_is_deterministic() -> None:
    model = create_model(**TINY)
    prompt = encode("hello").unsqueeze(0)
    a = generate(model, prompt, 10, context_len=64, temperature=0)
    b = generate(model, prompt, 10, context_len=64, temperature=0)
    assert a.shape == (1, 15) and torch.equal(a, b) and torch.equal(a[:, :5], prompt)


def test_bytes_round_trip_and_batches_are_shifted_by_one() -> None:
    text = "Attention — is all you need. " * 20
    assert decode(encode(text)) == text
    data = TextDataset(text, val_fraction=0.2)
    x, y = data.get_batch("train", 3, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 16)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])


def test_too_little_text_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="fewer than seq_len"):
        TextDataset("tiny text", 0.5).get_batch("val", 1, 32, torch.Generator())
