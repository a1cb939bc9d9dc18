"""Plots: feature importance, theta rankings, rank agreement and representation UMAPs."""

from ._embeddings import embeddings
from ._importance import feature_importance
from ._theta import rank_agreement, theta_ranking

__all__ = ["embeddings", "feature_importance", "rank_agreement", "theta_ranking"]
