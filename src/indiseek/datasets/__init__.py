"""Data sets: the built-in simulated CITE-seq data, the paper's synthetic settings and downloadable real sets."""

from ._bmmc import bmmc_cite, cite_h5ad_to_mudata
from ._paper import IDEAL_COORDINATES, paper_setting
from ._simulated import simulated_cite

__all__ = ["IDEAL_COORDINATES", "bmmc_cite", "cite_h5ad_to_mudata", "paper_setting", "simulated_cite"]
