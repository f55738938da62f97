"""Nested Learning.

From-scratch implementation of Nested Learning: HOPE, self-modifying Titans, the Continuum
Memory System and Delta Gradient Descent (NeurIPS 2025)
"""

from .config import ConfigError, ExperimentConfig, TrainConfig, load_config
from .device import get_device
from .models import create_model

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "TrainConfig",
    "__version__",
    "create_model",
    "get_device",
    "load_config",
]
