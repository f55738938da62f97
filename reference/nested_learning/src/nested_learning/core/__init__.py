"""The paper's core algorithms (optimizers, memory systems, attention variants ...)."""

from .attention import MultiHeadAttention, scaled_dot_product_attention

__all__ = ["MultiHeadAttention", "scaled_dot_product_attention"]
