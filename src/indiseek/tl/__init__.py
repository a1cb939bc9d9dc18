"""Tools: training and applying IndiSeek, and scoring its representations."""

from ._agreement import cluster_agreement, rank_agreement
from ._embeddings import embeddings
from ._fit import fit
from ._importance import feature_importance
from ._labels import representation_keys
from ._map import impute, transfer_labels, write_representations
from ._probe import linear_probe, probe_accuracy
from ._theta import theta_score
from ._wnn import wnn_weights

__all__ = [
    "cluster_agreement",
    "embeddings",
    "feature_importance",
    "fit",
    "impute",
    "linear_probe",
    "probe_accuracy",
    "rank_agreement",
    "theta_score",
    "transfer_labels",
    "wnn_weights",
    "write_representations",
]
