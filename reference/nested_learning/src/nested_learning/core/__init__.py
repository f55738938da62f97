"""The paper's core algorithms: DGD, fast memories, self-modifying Titans, CMS, optimizers."""

from .attention import MultiHeadAttention, scaled_dot_product_attention
from .cms import CMSConfig, CMSState, ContinuumMemory
from .dgd import DGD, dgd_step_size, dgd_update
from .optim import M3, DeepMomentumGD, DeltaMomentum
from .titans import SelfModifyingTitans, TitansConfig, TitansState

__all__ = [
    "DGD",
    "M3",
    "CMSConfig",
    "CMSState",
    "ContinuumMemory",
    "DeepMomentumGD",
    "DeltaMomentum",
    "MultiHeadAttention",
    "SelfModifyingTitans",
    "TitansConfig",
    "TitansState",
    "dgd_step_size",
    "dgd_update",
    "scaled_dot_product_attention",
]
