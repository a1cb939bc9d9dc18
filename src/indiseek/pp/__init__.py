"""Preprocessing."""

from ._prepare import prepare

__all__ = ["prepare"]
