"""Nearest-neighbour search shared by theta and WNN: exact (scikit-learn) or approximate (pynndescent)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.neighbors import NearestNeighbors

#: From this many cells on, ``"auto"`` searches approximate neighbours (exact search grows quadratically).
EXACT_NEIGHBORS_LIMIT = 50_000

_METHODS = ("auto", "exact", "approximate")


def use_approximate(n_obs: int, method: str) -> bool:
    """Whether ``method`` (``"auto"``, ``"exact"`` or ``"approximate"``) means an approximate search of ``n_obs``."""
    if method not in _METHODS:
        raise ValueError(f'`neighbors` must be "auto", "exact" or "approximate", got {method!r}.')
    return method == "approximate" or (method == "auto" and n_obs >= EXACT_NEIGHBORS_LIMIT)


def _descent(x: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from pynndescent import NNDescent

    return NNDescent(x, n_neighbors=n_neighbors, random_state=seed, n_jobs=-1).neighbor_graph


def nearest_neighbors(x: np.ndarray, n_neighbors: int, method: str = "auto", seed: int = 0) -> np.ndarray:
    """Indices of the ``n_neighbors`` nearest rows of each row of ``x`` (Euclidean), the row itself usually first.

    ``method="exact"``: scikit-learn (in chunks, never a full distance matrix, but its time grows with the square
    of the cells); ``"approximate"``: pynndescent's nearest-neighbour descent graph (time close to linear);
    ``"auto"``: exact below :data:`EXACT_NEIGHBORS_LIMIT` cells, approximate from there.
    """
    if use_approximate(len(x), method):
        return _descent(x, n_neighbors, seed)[0]
    _, index = NearestNeighbors(n_neighbors=n_neighbors).fit(x).kneighbors(x)
    return index


def without_self(index: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """Drop each row's own entry from a neighbour table (``index`` and any aligned ``values``), one column fewer.

    Where a row's own index is missing (duplicate points), its farthest neighbour is dropped instead.
    """
    is_self = index == np.arange(index.shape[0])[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    shape = (index.shape[0], index.shape[1] - 1)
    return [a[keep].reshape(shape) for a in (index, *values)]


class ApproximateNeighbors(TransformerMixin, BaseEstimator):
    """k-nearest-neighbour distance graph from pynndescent, in the form :func:`scanpy.pp.neighbors` reads.

    ``n_neighbors`` counts the cell itself, as scanpy does. Each row of the result holds the ``n_neighbors - 1``
    nearest other cells in order of distance, as a ``csr_matrix``: the graph that scanpy's exact path keeps. (Its
    own pynndescent path fails on SciPy's ``csr_array`` here, and keeps the cell and one neighbour more, which
    shifts muon's WNN weights.) The graph is built from the data passed to :meth:`transform`.
    """

    def __init__(self, n_neighbors: int = 15, random_state: int = 0):
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X, y=None):
        self.n_samples_fit_ = X.shape[0]
        return self

    def transform(self, X):
        index, distances = without_self(*_descent(np.asarray(X), self.n_neighbors, self.random_state))
        n, k = index.shape
        return sp.csr_matrix((distances.ravel(), index.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
