"""The reproducible studies behind ``indiseek benchmark``."""

from ._oracle import train_oracle_specific

__all__ = ["train_oracle_specific"]
