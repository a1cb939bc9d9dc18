r"""Per-coordinate standardisation within each batch of a batch covariate."""

from __future__ import annotations

import torch
from torch import nn


class BatchwiseStandardization(nn.Module):
    r"""Standardise each coordinate within each batch of a covariate: :math:`(z - \mu_b) / \sigma_b`.

    A batch normalisation without affine parameters whose moments are kept per batch :math:`b` of a covariate (a
    sample, donor or run), as in domain-specific batch normalisation. In training, the cells of a batch that has at
    least ``min_cells`` cells in the minibatch are standardised by that minibatch's moments, with gradients through
    them, and every batch with two cells or more moves its running moments; other cells use the running moments.
    Outside training, every cell uses the running moments of its batch. A row of ``weights`` that mixes batches
    (cells of a batch the model has not seen, encoded at the training cells' batch frequencies) uses the moments of
    that mixture.

    Dropout makes an encoder's outputs in training differ from its outputs at inference, so the running moments of
    training do not standardise the latter exactly; :meth:`calibrate` sets them from the inference outputs.

    After it, every batch has the same mean and variance along every coordinate, so no linear function of the
    output tells the batches apart by their means.

    Parameters
    ----------
    n_features
        Dimension of the input.
    n_batch
        Number of batches.
    momentum
        Weight of each minibatch in the running moments.
    min_cells
        Fewest cells of a batch in a minibatch for that minibatch's own moments to standardise them.
    eps
        Added to the variances.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import BatchwiseStandardization
    >>> norm = BatchwiseStandardization(2, n_batch=2)
    >>> batch = torch.eye(2)[torch.arange(200) % 2]
    >>> z = torch.randn(200, 2) + 5 * batch[:, :1]  # batch 0 shifted by 5
    >>> out = norm(z, batch)
    >>> [round(abs(float(out[batch[:, b] > 0].mean())), 3) for b in range(2)]  # each batch centred
    [0.0, 0.0]
    """

    def __init__(
        self, n_features: int, n_batch: int, *, momentum: float = 0.1, min_cells: int = 16, eps: float = 1e-12
    ):
        super().__init__()
        self.momentum, self.min_cells, self.eps = momentum, min_cells, eps
        self.register_buffer("running_mean", torch.zeros(n_batch, n_features))
        self.register_buffer("running_var", torch.ones(n_batch, n_features))

    def _running(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of each row's mixture of batches (one batch for a one-hot row)."""
        mean = weights @ self.running_mean
        second = weights @ (self.running_var + self.running_mean**2)
        return mean, (second - mean**2).clamp(min=0)

    @torch.no_grad()
    def calibrate(self, sums: torch.Tensor, squares: torch.Tensor, counts: torch.Tensor) -> None:
        """Set the running moments from per-batch sums of the input and of its squares over ``counts`` cells.

        The sums are taken over the encoder's outputs at inference (``batch x features``); a batch with fewer
        than two cells keeps its moments.
        """
        counts = counts.to(sums.dtype)
        ok = counts >= 2
        mean = sums[ok] / counts[ok, None]
        var = (squares[ok] - counts[ok, None] * mean**2) / (counts[ok, None] - 1)
        self.running_mean[ok] = mean.to(self.running_mean.dtype)
        self.running_var[ok] = var.clamp(min=0).to(self.running_var.dtype)

    def forward(self, z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Standardise ``z`` (cells x features) with the moments of each cell's batch (``weights``: one-hot rows)."""
        weights = weights.to(z.dtype)
        mean, var = self._running(weights)
        if not self.training:
            return (z - mean) * torch.rsqrt(var + self.eps)
        mean, var = mean.clone(), var.clone()
        members = weights > 0.5
        for b, n in enumerate(members.sum(dim=0).tolist()):  # one transfer of the counts, not one per batch
            if n < 2:
                continue
            rows = members[:, b]
            part = z[rows]
            batch_mean, batch_var = part.mean(dim=0), part.var(dim=0, unbiased=False)
            with torch.no_grad():
                self.running_mean[b].lerp_(batch_mean.detach(), self.momentum)
                self.running_var[b].lerp_(batch_var.detach() * n / (n - 1), self.momentum)
            if n >= self.min_cells:
                mean[rows], var[rows] = batch_mean, batch_var
        return (z - mean) * torch.rsqrt(var + self.eps)
