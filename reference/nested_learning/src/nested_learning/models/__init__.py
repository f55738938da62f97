"""Architectures. ``create_model`` is the single entry point the training and demo code use."""

from typing import Any

from ..config import from_dict
from .transformer import Transformer, TransformerConfig


def create_model(**kwargs: Any) -> Transformer:
    """Build the model from the ``model:`` section of a config (small CPU defaults).

    Raises:
        ConfigError: an unknown key (the message names it and lists the valid ones).
        ValueError: inconsistent sizes (the message names the field).
    """
    return Transformer(from_dict(TransformerConfig, kwargs, "model"))


__all__ = ["Transformer", "TransformerConfig", "create_model"]
