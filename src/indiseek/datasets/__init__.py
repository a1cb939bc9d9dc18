"""Data sets: the built-in simulated CITE-seq data."""

from ._simulated import simulated_cite

__all__ = ["simulated_cite"]
