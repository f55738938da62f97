"""Transformer++ baseline (the "Transformer++" rows of arXiv 2512.24695 Tables 1-2).

Llama-style decoder-only LM: pre-norm RMSNorm, rotary position embeddings (RoPE), SwiGLU MLP, no
biases, tied input/output embeddings. The pieces here (:func:`check_tokens`, :class:`Rotary`,
:class:`SwiGLU`, :class:`CausalSelfAttention` with its KV cache) are shared with Hope-Attention
(:mod:`nested_learning.models.hope`) and the Titans baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_positive(section: str, obj: object, names: tuple[str, ...]) -> None:
    """Raise ``ValueError("model.<name> must be > 0 ...")`` for the first non-positive field."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{section}.{name} must be an integer > 0 (got {value!r})")


def check_heads(d_model: int, n_heads: int, rope: bool) -> None:
    """Heads must split d_model evenly; RoPE rotates pairs of channels, so d_head must be even."""
    if d_model % n_heads != 0:
        raise ValueError(f"model.n_heads ({n_heads}) must divide model.d_model ({d_model})")
    if rope and (d_model // n_heads) % 2:
        raise ValueError(
            f"model.d_model / model.n_heads = {d_model // n_heads} must be even for RoPE"
        )


def check_tokens(tokens: Tensor, vocab_size: int, max_seq_len: int) -> None:
    """Reject malformed input loudly instead of wrapping or truncating it.

    Raises:
        ValueError: ``tokens`` is not ``[B, T]``, ``T > max_seq_len``, or an id is outside
            ``[0, vocab_size)``.
    """
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [batch, time] (got shape {tuple(tokens.shape)})")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be an integer tensor (got {tokens.dtype})")
    t = tokens.size(1)
    if t > max_seq_len:
        raise ValueError(
            f"sequence length {t} exceeds model.max_seq_len={max_seq_len}; "
            "crop the input or raise max_seq_len"
        )
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(
            f"token ids must be in [0, {vocab_size}) "
            f"(got min {int(tokens.min())}, max {int(tokens.max())})"
        )


class Rotary(nn.Module):
    """RoPE (Su et al., 2021): rotate channel pairs ``(x_i, x_{i+d/2})`` of q and k by the angle
    ``pos · base^(-2i/d)``, so ``q_m · k_n`` depends on positions only through ``m - n``."""

    cos: Tensor
    sin: Tensor

    def __init__(self, d_head: int, max_seq_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)  # [T_max, d_head/2]
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x [B, H, T, d_head]`` at absolute positions ``offset … offset+T-1`` → same shape."""
        t = x.size(-2)
        cos = self.cos[offset : offset + t].to(x.dtype)
        sin = self.sin[offset : offset + t].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SwiGLU(nn.Module):
    """``W_down (SiLU(W_gate x) ⊙ W_up x)`` (Shazeer, 2020), no biases."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, d_model]`` → ``[B, T, d_model]``."""
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        out: Tensor = self.down(F.silu(gate) * up)
        return out


KVCache = tuple[Tensor, Tensor]  # keys, values [B, H, T_past, d_head] (RoPE already applied)


class CausalSelfAttention(nn.Module):
    """Causal softmax attention with RoPE and an optional KV cache (for segment-wise processing).

    ``softmax(q kᵀ / √d_head + mask) v`` where query ``i`` (absolute position ``offset + i``) sees
    keys ``j ≤ offset + i``: the cached past plus the causal part of the current segment.
    """

    def __init__(self, d_model: int, n_heads: int, max_seq_len: int, rope_base: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.rotary = Rotary(d_model // n_heads, max_seq_len, rope_base)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """``x [B, T, d]`` following ``cache`` (``None`` = start of the sequence).

        Returns:
            ``([B, T, d], cache extended by this segment's keys and values)``.
        """
        b, t, d = x.shape
        past = 0 if cache is None else cache[0].size(2)
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.rotary(q, past), self.rotary(k, past)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # bottom-right aligned causal mask: query i sees keys j <= past + i
            keep = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        out: Tensor = self.out(y.transpose(1, 2).reshape(b, t, d))
        return out, (k, v)


@dataclass
class TransformerConfig:
    """Sizes of the Transformer++ baseline; the defaults are the small CPU size."""

    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    max_seq_len: int = 512
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        check_positive(
            "model", self, ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")
        )
        check_heads(self.d_model, self.n_heads, rope=True)
        if not self.rope_base > 1.0:
            raise ValueError(f"model.rope_base must be > 1 (got {self.rope_base})")


class TransformerBlock(nn.Module):
    """Pre-norm: ``x += Attn(RMSNorm(x))``, then ``x += SwiGLU(RMSNorm(x))``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.norm1 = nn.RMSNorm(c.d_model, eps=1e-6)
        self.attn = CausalSelfAttention(c.d_model, c.n_heads, c.max_seq_len, c.rope_base)
        self.norm2 = nn.RMSNorm(c.d_model, eps=1e-6)
        self.mlp = SwiGLU(c.d_model, c.d_ff)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, d_model]`` → ``[B, T, d_model]``."""
        x = x + self.attn(self.norm1(x))[0]
        out: Tensor = x + self.mlp(self.norm2(x))
        return out


class TokenEmbedding(nn.Module):
    """Tied embedding / LM head shared by every model here: ``E[tokens] · √d`` in (unit-RMS stream),
    ``RMSNorm(x) Eᵀ`` out; ``E ~ N(0, 1/d)`` so the initial logits have unit scale."""

    def __init__(self, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.final_norm = nn.RMSNorm(d_model, eps=1e-6)
        self.scale = math.sqrt(d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B, T]`` ids → ``[B, T, d_model]``."""
        out: Tensor = self.embed(tokens) * self.scale
        return out

    def logits(self, x: Tensor) -> Tensor:
        """``[B, T, d_model]`` → ``[B, T, vocab_size]``."""
        return F.linear(self.final_norm(x), self.embed.weight)


class Transformer(nn.Module):
    """Transformer++: tied embedding → pre-norm blocks → RMSNorm → tied LM head."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = TokenEmbedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))

    def forward(self, tokens: Tensor) -> Tensor:
        """Next-token logits.

        Args:
            tokens: ``[B, T]`` int64 ids in ``[0, vocab_size)``, ``T <= max_seq_len``.

        Returns:
            ``[B, T, vocab_size]``.
        """
        check_tokens(tokens, self.config.vocab_size, self.config.max_seq_len)
        x = self.tokens(tokens)
        for block in self.blocks:
            x = block(x)
        return self.tokens.logits(x)
