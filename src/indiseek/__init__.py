"""IndiSeek: shared and modality-specific representations of paired single-cell modalities."""

from importlib.metadata import version

from . import datasets, nn, pp, tl
from .model import IndiSeek

__all__ = ["IndiSeek", "datasets", "nn", "pp", "tl"]
__version__ = version("indiseek")
