"""Data sets: simulated CITE-seq data, the paper's synthetic settings, paired tensors with known truth, real sets."""

from ._bmmc import bmmc_cite, cite_h5ad_to_mudata
from ._paper import IDEAL_COORDINATES, paper_setting
from ._simulated import EXPECTED_SIGN_KEY, add_expected_theta_sign, simulated_cite
from ._tensors import TENSOR_LABELS, paired_tensors

__all__ = [
    "EXPECTED_SIGN_KEY",
    "IDEAL_COORDINATES",
    "TENSOR_LABELS",
    "add_expected_theta_sign",
    "bmmc_cite",
    "cite_h5ad_to_mudata",
    "paired_tensors",
    "paper_setting",
    "simulated_cite",
]
