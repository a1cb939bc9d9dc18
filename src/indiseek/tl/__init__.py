"""Tools: training and applying IndiSeek, and scoring its representations."""

from ._agreement import cluster_agreement, rank_agreement
from ._fit import fit, write_representations
from ._theta import theta_score

__all__ = ["cluster_agreement", "fit", "rank_agreement", "theta_score", "write_representations"]
