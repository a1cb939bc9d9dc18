"""Tools: training and applying IndiSeek."""

from ._fit import fit, write_representations

__all__ = ["fit", "write_representations"]
