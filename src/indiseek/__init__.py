"""IndiSeek: shared and modality-specific representations of paired single-cell modalities.

The subpackages and :class:`IndiSeek` load on first use (``isk.tl``, ``isk.IndiSeek``), so that the command line
starts without importing torch and scvi-tools. The reproducible studies behind ``indiseek benchmark`` live in
:mod:`indiseek.benchmarks`, which ``import indiseek`` does not load.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import data, datasets, nn, pl, pp, tl
    from .model import IndiSeek

__all__ = ["IndiSeek", "data", "datasets", "nn", "pl", "pp", "tl"]
__version__ = version("indiseek")

_SUBPACKAGES = frozenset(__all__) - {"IndiSeek"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name == "IndiSeek":
        value = importlib.import_module(f"{__name__}.model").IndiSeek
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
