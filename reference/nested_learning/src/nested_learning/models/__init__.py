"""Architectures. ``create_model`` is the single entry point the training and demo code use.

``arch`` picks the model; the other keyword arguments are the fields of its config dataclass:

* ``hope`` / ``hope_attention`` → :class:`HopeLM` (:class:`HopeConfig`, ``variant`` set by ``arch``)
* ``titans`` → :class:`TitansLM` (:class:`TitansLMConfig`), the Titans (LMM) baseline
* ``transformer`` → :class:`Transformer` (:class:`TransformerConfig`), the Transformer++ baseline
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import ConfigError, from_dict
from .hope import HopeBlock, HopeBlockState, HopeConfig, HopeLM
from .titans_lm import TitansLM, TitansLMConfig
from .transformer import Transformer, TransformerConfig

ARCHS = ("hope", "hope_attention", "titans", "transformer")


def create_model(arch: str = "hope", **kwargs: Any) -> nn.Module:
    """Build the model from the ``model:`` section of a config (small CPU defaults).

    Raises:
        ConfigError: an unknown ``arch`` or key (the message names it and lists the valid ones).
        ValueError: inconsistent sizes (the message names the field).
    """
    if arch in ("hope", "hope_attention"):
        if kwargs.get("variant", arch) != arch:
            raise ConfigError(
                f"model.variant={kwargs['variant']!r} contradicts model.arch={arch!r}"
            )
        return HopeLM(from_dict(HopeConfig, {**kwargs, "variant": arch}, "model"))
    if arch == "titans":
        return TitansLM(from_dict(TitansLMConfig, kwargs, "model"))
    if arch == "transformer":
        return Transformer(from_dict(TransformerConfig, kwargs, "model"))
    raise ConfigError(f"unknown model.arch {arch!r}; valid ones: {', '.join(ARCHS)}")


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def _count(arch: str, kwargs: dict[str, Any]) -> int:
    with torch.device("meta"):  # no memory is allocated
        return count_parameters(create_model(arch, **kwargs))


def matched_config(
    arch: str, target_params: int, multiple_of: int = 16, **base: Any
) -> dict[str, Any]:
    """Model kwargs for ``arch`` with ``base``'s sizes and ``d_ff`` chosen so the parameter count is
    within ±10% of ``target_params`` (the count is affine in ``d_ff``; rounded to ``multiple_of``).

    Raises:
        ValueError: no ``d_ff ≥ multiple_of`` gets within ±10% (change d_model or n_layers).
    """
    lo, hi = multiple_of, 2 * multiple_of
    p_lo, p_hi = _count(arch, {**base, "d_ff": lo}), _count(arch, {**base, "d_ff": hi})
    per_unit = (p_hi - p_lo) / (hi - lo)
    exact = lo + (target_params - p_lo) / per_unit
    d_ff = max(multiple_of, round(exact / multiple_of) * multiple_of)
    kwargs = {"arch": arch, **base, "d_ff": int(d_ff)}
    got = _count(arch, {**base, "d_ff": int(d_ff)})
    if abs(got - target_params) > 0.1 * target_params:
        raise ValueError(
            f"cannot match {target_params} parameters with {arch} and {base} "
            f"(closest: {got} at d_ff={d_ff})"
        )
    return kwargs


__all__ = [
    "ARCHS",
    "HopeBlock",
    "HopeBlockState",
    "HopeConfig",
    "HopeLM",
    "TitansLM",
    "TitansLMConfig",
    "Transformer",
    "TransformerConfig",
    "count_parameters",
    "create_model",
    "matched_config",
]
