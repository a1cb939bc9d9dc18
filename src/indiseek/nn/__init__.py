"""Neural-network building blocks: MLPs, contrastive losses and the CLUB estimators."""

from ._club import GaussianCLUB, MomentsCLUB
from ._critic import ContrastiveCritic
from ._losses import orthogonality, symmetric_info_nce
from ._mlp import MLP

__all__ = ["MLP", "ContrastiveCritic", "GaussianCLUB", "MomentsCLUB", "orthogonality", "symmetric_info_nce"]
