"""Sequence modalities: step indicators and the packed layout in which the model reads them."""

from __future__ import annotations

import numpy as np


def step_indicators(lengths: np.ndarray, n_steps: int, padding: str) -> np.ndarray:
    """``(n, n_steps)`` array with 1 at valid steps and 0 at padding, for sequences of the given lengths."""
    steps = np.arange(n_steps)[None, :]
    lengths = np.asarray(lengths)[:, None]
    valid = steps < lengths if padding == "end" else steps >= n_steps - lengths
    return valid.astype(np.float32)


def pack(values: np.ndarray, lengths: np.ndarray, n_steps: int, padding: str) -> np.ndarray:
    """The model's packed input of a sequence modality: its ``n_steps * n_features`` values, then the indicators."""
    return np.hstack([np.asarray(values, dtype=np.float32), step_indicators(lengths, n_steps, padding)])
