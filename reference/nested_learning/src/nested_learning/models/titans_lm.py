"""Titans (LMM) baseline LM: the "Titans (LMM)" rows of arXiv 2512.24695 Tables 1-2.

Each block is pre-norm ``x += LMM(RMSNorm(x))`` then ``x += SwiGLU(RMSNorm(x))``, where LMM is the
plain neural long-term memory of Titans (Behrouz et al., 2025): one deep residual-MLP memory per
head, written chunk-wise with DGD + retention from static k, v, η, α projections
(:class:`~nested_learning.core.titans.SelfModifyingTitans` with ``self_modifying=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..core.titans import SelfModifyingTitans, TitansConfig
from .transformer import SwiGLU, TokenEmbedding, check_heads, check_positive, check_tokens


@dataclass
class TitansLMConfig:
    """Sizes of the Titans baseline; the defaults are the small CPU size.

    ``chunk_size`` is the memory's write period C (reads use the state at the previous chunk end);
    ``first_order`` cuts the outer gradient through the memory writes (cheaper, less faithful);
    ``compile`` runs each mixer through ``torch.compile`` (as ``HopeConfig.titans_compile``).
    """

    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 384
    max_seq_len: int = 512
    chunk_size: int = 16
    mem_hidden: int | None = None
    eta_scale: float = 0.1
    momentum: bool = True
    first_order: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        check_positive(
            "model",
            self,
            ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len", "chunk_size"),
        )
        check_heads(self.d_model, self.n_heads, rope=False)
        if self.mem_hidden is not None and self.mem_hidden <= 0:
            raise ValueError(f"model.mem_hidden must be > 0 or null (got {self.mem_hidden})")
        if not self.eta_scale > 0:
            raise ValueError(f"model.eta_scale must be > 0 (got {self.eta_scale})")

    def titans(self) -> TitansConfig:
        """The mixer's config: the plain (non-self-modifying) LMM."""
        return TitansConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            mem_hidden=self.mem_hidden,
            chunk_size_memory=self.chunk_size,
            chunk_size_other=self.chunk_size,
            eta_scale=self.eta_scale,
            momentum=self.momentum,
            first_order=self.first_order,
            self_modifying=False,
            compile=self.compile,
        )


class TitansBlock(nn.Module):
    """``x += LMM(RMSNorm(x))``; ``x += SwiGLU(RMSNorm(x))`` (``[B, T, d]`` → ``[B, T, d]``)."""

    def __init__(self, config: TitansLMConfig) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(config.d_model, eps=1e-6)
        self.mixer = SelfModifyingTitans(config.titans())
        self.norm2 = nn.RMSNorm(config.d_model, eps=1e-6)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.mixer(self.norm1(x))[0]
        out: Tensor = x + self.mlp(self.norm2(x))
        return out


class TitansLM(nn.Module):
    """Tied embedding → Titans blocks → RMSNorm → tied LM head; fresh memories per sequence."""

    def __init__(self, config: TitansLMConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = TokenEmbedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(TitansBlock(config) for _ in range(config.n_layers))

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens [B, T]`` (ids in ``[0, vocab)``, ``T <= max_seq_len``) → ``[B, T, V]``."""
        check_tokens(tokens, self.config.vocab_size, self.config.max_seq_len)
        x = self.tokens(tokens)
        for block in self.blocks:
            x = block(x)
        return self.tokens.logits(x)
