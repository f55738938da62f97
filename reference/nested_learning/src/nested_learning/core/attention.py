"""Scaled dot-product and multi-head attention (Vaswani et al., 2017, Sec. 3.2).

REPLACE THIS with your paper's core algorithm: keep one concept per module, named after the paper's
term, with the equation and its number in the docstring.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True
) -> torch.Tensor:
    """Vaswani et al. (2017), Sec. 3.2.1: ``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V``.

    Args:
        q: queries ``[..., T_q, d_k]``.
        k: keys ``[..., T_k, d_k]``.
        v: values ``[..., T_k, d_v]``.
        causal: mask positions ``j > i`` so token ``i`` sees only its past (decoder, Sec. 3.2.3).

    Returns:
        ``[..., T_q, d_v]``.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if causal:
        t_q, t_k = q.size(-2), k.size(-2)
        future = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).triu(1 + t_k - t_q)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class MultiHeadAttention(nn.Module):
    """Sec. 3.2.2: ``MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O``,
    ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` with ``d_k = d_v = d_model / h``.

    Uses PyTorch's fused kernel for speed; :func:`scaled_dot_product_attention` is the readable
    formula that the tests check it against.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, T, d_model]`` → ``[B, T, d_model]`` (causal self-attention)."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(dim=2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
        )
        out: torch.Tensor = self.out(y.transpose(1, 2).reshape(b, t, d))
        return out
