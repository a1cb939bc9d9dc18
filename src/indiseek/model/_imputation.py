r"""Predicting one modality from the other through the shared features.

What the source modality :math:`s` can tell about the target :math:`t` passes through the shared features, so an
imputation estimates :math:`E[X_t \mid C_s]`. Two estimators:

* ``"neighbors"``: the mean of the reconstructions :math:`g_t(Z_t, C_t)` of the ``k`` training cells nearest to the
  cell in the source's shared space, with their standard deviation as the spread (what :math:`C_s` leaves open).
  It needs no assumption that the decoder, trained on :math:`C_t`, accepts :math:`C_s` in its place.
* ``"marginal"``: :math:`g_t(Z', C_s)` averaged over specific features :math:`Z'` drawn from the training cells
  (:math:`Z_t` is trained to be independent of :math:`C_s`). It decodes the source's shared features as if they
  were the target's; CLIP aligns the two only up to its temperature, and the gap between them biases the estimate.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

#: The estimators of :meth:`~indiseek.IndiSeek.impute`.
IMPUTE_METHODS = ("neighbors", "marginal")
#: At most this many decoded values (cells x neighbours x features) are held at once.
_MAX_VALUES = 2**24


def check_impute_options(method: str, n_neighbors: int, n_samples: int) -> None:
    """Refuse an unknown ``method`` or a count that is not a positive integer, naming the argument."""
    if method not in IMPUTE_METHODS:
        raise ValueError(f"Unknown imputation method {method!r}; choose one of {IMPUTE_METHODS}.")
    for name, value in (("n_neighbors", n_neighbors), ("n_samples", n_samples)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


@torch.no_grad()
def neighbor_decode(
    module,
    c_query: torch.Tensor,
    c_reference: torch.Tensor,
    reference: tuple[torch.Tensor, torch.Tensor],
    t: int,
    n_neighbors: int,
    to_units,
    batch: torch.Tensor | None = None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the reconstructions of each query cell's nearest reference cells.

    ``c_query`` and ``c_reference`` are shared features of the source modality; ``reference`` holds the reference
    cells' specific and shared features :math:`(Z_t, C_t)` of the target modality ``t``, decoded in the query
    cell's batch (``batch``: one-hot rows; ``None``: the training cells' batch frequencies) and mapped to feature
    units by ``to_units``.
    """
    k = min(int(n_neighbors), len(c_reference))
    index = NearestNeighbors(n_neighbors=k).fit(c_reference.numpy())
    device = module.input_scale.device
    z_ref, c_ref = (r.to(device) for r in reference)
    n_features = to_units(module.decode(z_ref[:1], c_ref[:1], t, None)).shape[1]
    step = max(1, min(batch_size, _MAX_VALUES // (k * n_features)))
    means, stds = [], []
    for start in range(0, len(c_query), step):
        neighbours = index.kneighbors(c_query[start : start + step].numpy(), return_distance=False)
        rows = torch.as_tensor(neighbours.reshape(-1), device=device)
        b = None if batch is None else batch[start : start + step].to(device).repeat_interleave(k, dim=0)
        decoded = to_units(module.decode(z_ref[rows], c_ref[rows], t, b)).double().reshape(len(neighbours), k, -1)
        means.append(decoded.mean(dim=1).float().cpu().numpy())
        stds.append(decoded.std(dim=1, unbiased=False).float().cpu().numpy())
    if not means:
        return np.zeros((0, n_features), np.float32), np.zeros((0, n_features), np.float32)
    return np.concatenate(means), np.concatenate(stds)
