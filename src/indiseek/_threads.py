"""Torch's thread count: set for a call, and restored after library calls that change it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n_threads: int | None = None) -> Iterator[None]:
    """Run with ``n_threads`` torch threads (``None``: keep the current count); restore the count found on entry.

    scanpy's numba kernels reset torch's intra-op thread count (with ``OMP_NUM_THREADS=1`` set, torch runs two threads
    after ``sc.pp.pca``), so the count is restored even when ``n_threads`` is ``None``.
    """
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
        raise ValueError(f"`n_threads` must be a positive integer (or None: torch's current count), got {n_threads!r}.")
    before = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def keeps_torch_threads(fn: Callable) -> Callable:
    """Decorate a function whose library calls may change torch's thread count, so that they do not."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads():
            return fn(*args, **kwargs)

    return wrapper
