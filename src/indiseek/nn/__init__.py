"""Neural-network building blocks: MLPs, a sequence (Transformer) encoder, contrastive losses, CLUB estimators."""

from ._club import BatchMomentsCLUB, CategoricalCLUB, GaussianCLUB, MomentsCLUB
from ._critic import ContrastiveCritic
from ._erasure import LinearErasure
from ._losses import orthogonality, symmetric_info_nce
from ._mlp import MLP
from ._sequence import SequenceEncoder, step_mask
from ._standardization import BatchwiseStandardization
from ._whitening import RunningWhitening

__all__ = [
    "MLP",
    "BatchMomentsCLUB",
    "BatchwiseStandardization",
    "CategoricalCLUB",
    "ContrastiveCritic",
    "GaussianCLUB",
    "LinearErasure",
    "MomentsCLUB",
    "RunningWhitening",
    "SequenceEncoder",
    "orthogonality",
    "step_mask",
    "symmetric_info_nce",
]
