"""Data adapters: arrays to MuData, and readers of the MultiBench files."""

from ._arrays import from_arrays, to_arrays
from ._multibench import read_multibench

__all__ = ["from_arrays", "read_multibench", "to_arrays"]
