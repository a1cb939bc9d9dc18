"""Linear erasure of a categorical covariate (the batch) from a representation."""

from __future__ import annotations

import torch
from torch import nn


class LinearErasure(nn.Module):
    r"""An affine map that leaves no linear trace of a categorical covariate, changing the representation least.

    Fitted on representations :math:`x` and the one-hot covariate :math:`b` of the same cells, it is LEACE (Belrose
    et al., 2023, "LEACE: Perfect linear concept erasure in closed form"):

    .. math:: x \mapsto x - W^{+} P\, W (x - \mu),

    with :math:`\mu` the mean of :math:`x`, :math:`W = \Sigma^{-1/2}` the whitening by its covariance and :math:`P`
    the orthogonal projection onto the span of :math:`W \mathrm{Cov}(x, b)`. On the cells it was fitted on, every
    level of the covariate then has the same mean, so no linear classifier predicts the covariate better than a
    constant, and of all maps that do so this one moves the cells least (in the whitened norm). It removes at most
    ``n_levels - 1`` directions. The map is one for every cell: applying it needs no covariate. Before
    :meth:`fit` (and after :meth:`reset`) it is the identity.

    Parameters
    ----------
    n_features
        Dimension of the representation.
    floor
        Directions whose variance is below ``floor`` times the largest are left out of the whitening.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import LinearErasure
    >>> batch = torch.eye(2)[torch.arange(100) % 2]
    >>> x = torch.randn(100, 3) + 2.0 * batch[:, :1]  # batch 0 is shifted along the first coordinate
    >>> erasure = LinearErasure(3)
    >>> erasure.fit(x, batch)
    >>> y = erasure(x)
    >>> bool(torch.allclose(y[batch[:, 0] == 1].mean(0), y[batch[:, 1] == 1].mean(0), atol=1e-4))
    True
    """

    def __init__(self, n_features: int, floor: float = 1e-6):
        super().__init__()
        self.floor = float(floor)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("projection", torch.zeros(n_features, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The erased representation (``x`` itself before :meth:`fit`)."""
        return x - (x - self.mean) @ self.projection.T

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before the erasure existed loads with the identity map
        for name, buffer in (("mean", self.mean), ("projection", self.projection)):
            state_dict.setdefault(prefix + name, torch.zeros_like(buffer))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset(self) -> None:
        """Make the map the identity again."""
        self.mean.zero_()
        self.projection.zero_()

    @torch.no_grad()
    def fit(self, x: torch.Tensor, onehot: torch.Tensor) -> None:
        """Fit the map on representations ``x`` (cells x features) and their one-hot covariate ``onehot``."""
        x, onehot = x.double(), onehot.double()
        mean = x.mean(0)
        centred = x - mean
        values, vectors = torch.linalg.eigh(centred.T @ centred / len(x))
        keep = values > self.floor * values.max().clamp_min(1e-300)
        vectors, root = vectors[:, keep], values[keep].sqrt()
        whiten, unwhiten = (vectors / root) @ vectors.T, (vectors * root) @ vectors.T
        cross = centred.T @ (onehot - onehot.mean(0)) / len(x)
        left, singular, _ = torch.linalg.svd(whiten @ cross, full_matrices=False)
        left = left[:, singular > 1e-10 * singular.max().clamp_min(1e-300)]
        self.mean.copy_(mean)
        self.projection.copy_(unwhiten @ left @ left.T @ whiten)
