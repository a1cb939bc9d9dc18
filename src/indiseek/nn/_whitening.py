r"""Whitening by running moments: the input of an adversary that must see every direction of a representation."""

from __future__ import annotations

import torch
from torch import nn


class RunningWhitening(nn.Module):
    r"""Centre and whiten by running estimates of the mean and covariance: :math:`(x - \mu)\,W`.

    :math:`W = (\Sigma + \epsilon \bar\sigma^2 I)^{-1/2}`, with :math:`\Sigma` and :math:`\mu` exponential moving
    averages of the batches passed to :meth:`update`, and :math:`\bar\sigma^2` the mean eigenvalue of :math:`\Sigma`.
    The moments and :math:`W` are constants for the gradient: the output is a fixed linear map of ``x``. Calling the
    module never changes the moments, so a training step that reads the same cells several times (an adversary's
    steps, then its encoder's) updates them once, where it chooses.

    An adversarial classifier that reads a representation through this map sees the directions in which the
    representation varies little as clearly as the others; without it, an encoder can keep information (a batch) in
    directions of tiny variance, where a classifier with bounded weights cannot read it but a probe on standardised
    features can.

    Parameters
    ----------
    n_features
        Dimension of ``x``.
    momentum
        Weight of each new batch in the moving averages (the first batch sets them).
    eps
        :math:`\epsilon`, the floor on the eigenvalues relative to their mean.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import RunningWhitening
    >>> whiten = RunningWhitening(3, momentum=1.0, eps=1e-6)
    >>> x = torch.randn(500, 3) * torch.tensor([1.0, 0.1, 0.01])
    >>> whiten.update(x)
    >>> torch.cov(whiten(x).T).diagonal().round(decimals=2)
    tensor([1., 1., 1.])
    """

    def __init__(self, n_features: int, *, momentum: float = 0.1, eps: float = 1e-3):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("cov", torch.eye(n_features))
        self.register_buffer("whitener", torch.eye(n_features))
        self.register_buffer("n_updates", torch.tensor(0))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Move the running moments towards those of ``x`` (cells x features) and recompute :math:`W`.

        A batch of fewer than two cells has no covariance and leaves the moments as they are.
        """
        if len(x) < 2:
            return
        x = x.detach()
        weight = 1.0 if int(self.n_updates) == 0 else self.momentum
        self.mean.lerp_(x.mean(dim=0), weight)
        self.cov.lerp_(torch.cov(x.T, correction=1).reshape(self.cov.shape), weight)
        self.n_updates += 1
        values, vectors = torch.linalg.eigh(self.cov.double())
        values = values.clamp(min=0)
        values = values + self.eps * values.mean().clamp(min=torch.finfo(torch.float64).tiny)
        self.whitener.copy_((vectors * values.rsqrt()) @ vectors.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`(x - \mu) W` with the current moments (the identity before the first :meth:`update`)."""
        return (x - self.mean) @ self.whitener
