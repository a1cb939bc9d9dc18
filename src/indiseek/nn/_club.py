"""The CLUB mutual-information upper bound with a Gaussian variational conditional (Cheng et al., 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ._mlp import MLP

#: Bound on the magnitude of the log-variance, so that an estimator that lags behind the encoder cannot make the
#: bound arbitrarily large or small through the variance alone.
LOGVAR_BOUND = 5.0


class GaussianCLUB(nn.Module):
    r"""Estimator of :math:`I(Z; C)` from above, with :math:`q(z \mid c) = N(\mu(c), \mathrm{diag}\,\sigma^2(c))`.

    The mean and log-variance are separate MLPs of the condition ``c``. The estimator is fitted by maximum likelihood
    (:meth:`learning_loss`) in alternation with the encoder that produces ``z``; the encoder minimises the bound
    (:meth:`forward`)

    .. math::
        \mathrm{CLUB} = \frac{1}{B}\sum_i \Big[\log q(z_i \mid c_i) - \frac{1}{B}\sum_j \log q(z_j \mid c_i)\Big],

    whose normalising constants cancel. The all-pairs term is computed in :math:`O(Bd)` from the batch moments of
    ``z`` (:math:`\frac1B\sum_j (z_j - \mu_i)^2 = \overline{z^2} - 2\mu_i\bar z + \mu_i^2`), never as a
    :math:`B \times B \times d` tensor.

    Parameters
    ----------
    n_condition
        Dimension of the condition ``c``.
    n_target
        Dimension of ``z``.
    n_hidden
        Width of the hidden layers of the mean and log-variance networks.
    n_layers
        Number of linear layers of each network.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import GaussianCLUB
    >>> club = GaussianCLUB(n_condition=2, n_target=3, n_hidden=8, n_layers=2)
    >>> c, z = torch.randn(16, 2), torch.randn(16, 3)
    >>> club(c, z).shape, club.learning_loss(c, z).shape
    (torch.Size([]), torch.Size([]))
    """

    def __init__(self, n_condition: int, n_target: int, *, n_hidden: int = 50, n_layers: int = 2):
        super().__init__()
        self.mean = MLP(n_condition, n_target, n_hidden=n_hidden, n_layers=n_layers)
        self.logvar = MLP(n_condition, n_target, n_hidden=n_hidden, n_layers=n_layers)

    def moments(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and log-variance of :math:`q(z \mid c)`, each of shape ``(batch, n_target)``."""
        return self.mean(c), LOGVAR_BOUND * torch.tanh(self.logvar(c) / LOGVAR_BOUND)

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """CLUB upper bound on :math:`I(Z; C)` for a batch of pairs ``(c_i, z_i)`` (scalar)."""
        mu, logvar = self.moments(c)
        inv_var = torch.exp(-logvar)
        positive = -0.5 * ((mu - z) ** 2 * inv_var).sum(dim=1)
        # mean over j of (z_j - mu_i)^2, coordinate-wise, from the batch moments of z: O(B d)
        z_mean = z.mean(dim=0, keepdim=True)
        z_sq_mean = (z**2).mean(dim=0, keepdim=True)
        all_pairs = z_sq_mean - 2.0 * mu * z_mean + mu**2
        negative = -0.5 * (all_pairs * inv_var).sum(dim=1)
        return (positive - negative).mean()

    def log_likelihood(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Mean Gaussian log-likelihood :math:`\log q(z_i \mid c_i)` per sample, without the constant."""
        mu, logvar = self.moments(c)
        return (-0.5 * ((mu - z) ** 2 * torch.exp(-logvar) + logvar)).sum(dim=1).mean()

    def learning_loss(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood that the estimator minimises (``z`` should be detached from its encoder)."""
        return -self.log_likelihood(c, z)
