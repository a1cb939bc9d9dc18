"""IndiSeek: shared and modality-specific representations of paired single-cell modalities.

The reproducible studies behind ``indiseek benchmark`` live in :mod:`indiseek.benchmarks`, which ``import indiseek``
does not load.
"""

from importlib.metadata import version

from . import data, datasets, nn, pl, pp, tl
from .model import IndiSeek

__all__ = ["IndiSeek", "data", "datasets", "nn", "pl", "pp", "tl"]
__version__ = version("indiseek")
