"""Neural-network building blocks: MLPs, the CLIP loss and the CLUB estimator."""

from ._club import GaussianCLUB
from ._losses import symmetric_info_nce
from ._mlp import MLP

__all__ = ["MLP", "GaussianCLUB", "symmetric_info_nce"]
