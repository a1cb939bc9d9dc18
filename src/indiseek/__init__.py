"""IndiSeek: shared and modality-specific representations of paired single-cell modalities."""

from importlib.metadata import version

from . import benchmarks, data, datasets, nn, pl, pp, tl
from .model import IndiSeek

__all__ = ["IndiSeek", "benchmarks", "data", "datasets", "nn", "pl", "pp", "tl"]
__version__ = version("indiseek")
