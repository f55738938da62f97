"""A small decoder-only Transformer language model (Vaswani et al., 2017).

THE EXAMPLE TO REPLACE: this is the sample paper's architecture, written in the patterns the rest of
the project expects (a config dataclass with small defaults, ``forward(tokens) -> logits``,
equations with their numbers in docstrings). Put your paper's architecture here or beside it, and
point ``create_model`` in ``models/__init__.py`` at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..core.attention import MultiHeadAttention


@dataclass
class TransformerConfig:
    """Sizes of the model; the defaults are the small CPU size (about 0.4 M parameters)."""

    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    max_seq_len: int = 256
    dropout: float = 0.0
    norm_first: bool = (
        False  # the paper is post-norm (Sec. 3.1); pre-norm trains deep stacks better
    )

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model.{name} must be > 0 (got {getattr(self, name)})")
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"model.n_heads ({self.n_heads}) must divide model.d_model ({self.d_model})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1) (got {self.dropout})")


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """Sec. 3.5: ``PE(pos, 2i) = sin(pos / 10000^(2i/d))``, ``PE(pos, 2i+1) = cos(...)``.

    Returns ``[max_len, d_model]``.
    """
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2).float() / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)[:, : d_model // 2]
    return table


class FeedForward(nn.Module):
    """Eq. 2: ``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2``."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class DecoderBlock(nn.Module):
    """Sec. 3.1: each sub-layer is wrapped as ``LayerNorm(x + Sublayer(x))``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_first = config.norm_first
        self.attn = MultiHeadAttention(config.d_model, config.n_heads, config.dropout)
        self.ffn = FeedForward(config.d_model, config.d_ff, config.dropout)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, d_model]`` → ``[B, T, d_model]``."""
        if self.norm_first:
            x = x + self.drop(self.attn(self.norm1(x)))
            out: torch.Tensor = x + self.ffn(self.norm2(x))
            return out
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.ffn(x))  # type: ignore[no-any-return]


class Transformer(nn.Module):
    """Embedding (× √d_model, Sec. 3.4) + positions + decoder blocks + tied LM head."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.register_buffer(
            "positions", sinusoidal_positions(config.max_seq_len, config.d_model), persistent=False
        )
        self.blocks = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.embed.weight  # Sec. 3.4: shared embedding / pre-softmax weights
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits.

        Args:
            tokens: ``[B, T]`` int64 ids in ``[0, vocab_size)``, ``T <= max_seq_len``.

        Returns:
            ``[B, T, vocab_size]``.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, time] (got shape {tuple(tokens.shape)})")
        t = tokens.size(1)
        if t > self.config.max_seq_len:
            raise ValueError(
                f"sequence length {t} exceeds model.max_seq_len={self.config.max_seq_len}; "
                "crop the input or raise max_seq_len"
            )
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(
                f"token ids must be in [0, {self.config.vocab_size}) "
                f"(got min {int(tokens.min())}, max {int(tokens.max())})"
            )
        positions: torch.Tensor = self.positions  # type: ignore[assignment]
        x = self.embed(tokens) * math.sqrt(self.config.d_model) + positions[:t]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.final_norm(x))  # type: ignore[no-any-return]
