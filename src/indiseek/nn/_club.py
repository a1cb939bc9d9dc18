"""The CLUB mutual-information upper bound with a Gaussian variational conditional (Cheng et al., 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ._mlp import MLP
from ._whitening import RunningWhitening

#: Bound on the magnitude of the log-variance, so that an estimator that lags behind the encoder cannot make the
#: bound arbitrarily large or small through the variance alone.
LOGVAR_BOUND = 5.0


def club_bound(mu: torch.Tensor, z: torch.Tensor, inv_var: torch.Tensor | float = 1.0) -> torch.Tensor:
    r"""The all-pairs CLUB value for a diagonal Gaussian :math:`q(z \mid c_i) = N(\mu_i, 1 / \text{inv\_var}_i)`.

    The mean over :math:`j` of :math:`(z_j - \mu_i)^2` is taken coordinate-wise from the batch moments of ``z``
    (:math:`\overline{z^2} - 2\mu_i\bar z + \mu_i^2`), in :math:`O(Bd)`; the log-variance terms cancel.
    """
    positive = -0.5 * ((mu - z) ** 2 * inv_var).sum(dim=1)
    z_mean = z.mean(dim=0, keepdim=True)
    z_sq_mean = (z**2).mean(dim=0, keepdim=True)
    all_pairs = z_sq_mean - 2.0 * mu * z_mean + mu**2
    negative = -0.5 * (all_pairs * inv_var).sum(dim=1)
    return (positive - negative).mean()


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
        return club_bound(mu, z, torch.exp(-logvar))

    def log_likelihood(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Mean Gaussian log-likelihood :math:`\log q(z_i \mid c_i)` per sample, without the constant."""
        mu, logvar = self.moments(c)
        return (-0.5 * ((mu - z) ** 2 * torch.exp(-logvar) + logvar)).sum(dim=1).mean()

    def learning_loss(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood that the estimator minimises (``z`` should be detached from its encoder)."""
        return -self.log_likelihood(c, z)


class MomentsCLUB(nn.Module):
    r"""CLUB with a linear-Gaussian :math:`q(z \mid c) = N(a + B c, \Sigma)` whose moments are fitted in closed form.

    This is the estimator of the paper's footnote 5: a multivariate Gaussian whose moments are fitted from data
    (:meth:`fit`: least squares for the mean, the residual covariance for :math:`\Sigma`), instead of mean and
    log-variance networks trained by gradient steps. It captures linear dependence of ``z`` on ``c`` only. The bound
    is the same all-pairs CLUB value as :class:`GaussianCLUB`, computed in :math:`O(Bd^2)` after whitening by
    :math:`\Sigma^{-1/2}`. Before the first :meth:`fit` the estimator is :math:`N(0, I)`.

    Parameters
    ----------
    n_condition
        Dimension of the condition ``c``.
    n_target
        Dimension of ``z``.
    ridge
        Relative ridge added to the covariance of ``c`` and to :math:`\Sigma` (times their mean variance).

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import MomentsCLUB
    >>> club = MomentsCLUB(n_condition=2, n_target=3)
    >>> c = torch.randn(500, 2)
    >>> z = torch.cat([c, torch.randn(500, 1)], dim=1)
    >>> club.fit(c, z)
    >>> float(club(c, z)) > 1.0
    True
    """

    def __init__(self, n_condition: int, n_target: int, *, ridge: float = 1e-4):
        super().__init__()
        self.ridge = ridge
        self.register_buffer("coef", torch.zeros(n_condition + 1, n_target))
        self.register_buffer("whitener", torch.eye(n_target))

    @staticmethod
    def _design(c: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.ones_like(c[:, :1]), c], dim=1)

    @torch.no_grad()
    def fit(self, c: torch.Tensor, z: torch.Tensor) -> None:
        """Refit the mean (least squares of ``z`` on ``c``) and the residual covariance on the pairs given."""
        design = self._design(c).double()
        z = z.double()
        gram = design.T @ design / len(z)
        gram += self.ridge * torch.diag(gram).mean() * torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
        coef = torch.linalg.solve(gram, design.T @ z / len(z))
        residual = z - design @ coef
        cov = residual.T @ residual / len(z)
        cov += (
            self.ridge
            * torch.diag(cov).mean().clamp_min(1e-12)
            * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
        )
        # whitener W with W W^T = cov^{-1}: (v W)(v W)^T = v cov^{-1} v^T for a row vector v
        self.coef.copy_(coef.to(self.coef.dtype))
        self.whitener.copy_(torch.linalg.cholesky(torch.linalg.inv(cov)).to(self.whitener.dtype))

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """CLUB upper bound on :math:`I(Z; C)` under the fitted linear-Gaussian :math:`q` (scalar)."""
        # after whitening by Sigma^{-1/2} the Gaussian has unit variance in every coordinate
        return club_bound(self._design(c) @ self.coef @ self.whitener, z @ self.whitener)


class CategoricalCLUB(nn.Module):
    r"""Upper bound on :math:`I(X; B)` for a categorical :math:`B` (a batch), with a classifier :math:`q(b \mid x)`.

    :math:`q(b \mid x) = \mathrm{softmax}(\ell(x))_b` for an MLP :math:`\ell`, fitted by maximum likelihood (the
    cross-entropy, :meth:`learning_loss`) in alternation with the encoder of :math:`x`, which minimises

    .. math::
        \mathrm{CLUB} = \frac{1}{B}\sum_i \Big[\log q(b_i \mid x_i) - \sum_k \hat p_k \log q(k \mid x_i)\Big],

    with :math:`\hat p_k` the share of category :math:`k` in the batch, which is the all-pairs CLUB term
    :math:`\frac{1}{B}\sum_j \log q(b_j \mid x_i)` in :math:`O(BK)`. The bound is zero when the classifier's output
    does not depend on :math:`x`, and at most :math:`\log K`-sized otherwise.

    With ``whiten=True`` the classifier reads :math:`x` through a :class:`RunningWhitening`, so that it sees the
    directions in which :math:`x` varies little as clearly as the others, and the encoder cannot hide the category
    there.

    Parameters
    ----------
    n_input
        Dimension of :math:`x`.
    n_categories
        Number of categories :math:`K`.
    n_hidden
        Width of the classifier's hidden layers.
    n_layers
        Number of linear layers of the classifier.
    whiten
        Read :math:`x` whitened by its running moments (else as it is).

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import CategoricalCLUB
    >>> club = CategoricalCLUB(n_input=4, n_categories=3, n_hidden=8)
    >>> x, b = torch.randn(16, 4), torch.nn.functional.one_hot(torch.arange(16) % 3).float()
    >>> club(x, b).shape, club.learning_loss(x, b).shape
    (torch.Size([]), torch.Size([]))
    """

    def __init__(self, n_input: int, n_categories: int, *, n_hidden: int = 50, n_layers: int = 2, whiten: bool = True):
        super().__init__()
        self.whiten = RunningWhitening(n_input) if whiten else nn.Identity()
        self.logits = MLP(n_input, n_categories, n_hidden=n_hidden, n_layers=n_layers)

    def observe(self, x: torch.Tensor) -> None:
        """Update the whitening's running moments with a training batch ``x`` (nothing to do without whitening).

        Call it once per batch of cells, before the classifier's steps on them.
        """
        if isinstance(self.whiten, RunningWhitening):
            self.whiten.update(x)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q(b \mid x)` for every category (cells x categories), read from the whitened ``x``."""
        return torch.log_softmax(self.logits(self.whiten(x)), dim=1)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """CLUB upper bound on :math:`I(X; B)` for a batch of ``x`` and one-hot categories ``onehot`` (scalar)."""
        log_q = self.log_probs(x)
        positive = (log_q * onehot).sum(dim=1)
        negative = log_q @ onehot.mean(dim=0)
        return (positive - negative).mean()

    def learning_loss(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the classifier (``x`` should be detached from its encoder)."""
        return -(self.log_probs(x) * onehot).sum(dim=1).mean()


class BatchMomentsCLUB(nn.Module):
    r"""CLUB on a categorical :math:`B` with Gaussian :math:`q(x \mid b) = N(\mu_b, \mathrm{diag}\,\sigma^2)`, in closed form.

    The means :math:`\mu_b` and the pooled within-batch variances :math:`\sigma^2` are computed from the batch of
    pairs the bound is evaluated on, so the estimator never lags behind the encoder (there is nothing to fit): the
    bound is the all-pairs CLUB value of :func:`club_bound` under these moments, a between-batch over within-batch
    spread of the means. It sees differences in the means only.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import BatchMomentsCLUB
    >>> onehot = torch.nn.functional.one_hot(torch.arange(400) % 2).float()
    >>> shifted = torch.randn(400, 3) + 2 * onehot[:, :1]
    >>> club = BatchMomentsCLUB()
    >>> float(club(shifted, onehot)) > 1.0, abs(float(club(torch.randn(400, 3), onehot))) < 0.05
    (True, True)
    """

    def observe(self, x: torch.Tensor) -> None:
        """Nothing to track: the moments are those of the batch the bound is evaluated on."""

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """CLUB upper bound on :math:`I(X; B)` from the moments of ``x`` within each category of ``onehot``."""
        counts = onehot.sum(dim=0)
        present = counts > 0
        onehot, counts = onehot[:, present], counts[present]
        means = (onehot.T @ x) / counts[:, None]
        mu = onehot @ means
        within = ((x - mu) ** 2).sum(dim=0) / max(len(x) - int(present.sum()), 1)
        return club_bound(mu, x, 1.0 / within.clamp_min(1e-6))
