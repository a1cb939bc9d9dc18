"""Plots: feature importance, the lambda path, per-feature predictability, theta rankings, rank agreement and representation UMAPs."""

from ._embeddings import embeddings
from ._importance import feature_importance
from ._lambda import lambda_path
from ._predictability import predictability
from ._theta import rank_agreement, theta_ranking

__all__ = ["embeddings", "feature_importance", "lambda_path", "predictability", "rank_agreement", "theta_ranking"]
