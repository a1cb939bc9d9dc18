"""The InfoNCE completeness critic of the FactorizedCL and InfoDisen objectives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._losses import symmetric_info_nce
from ._mlp import MLP


class ContrastiveCritic(nn.Module):
    r"""InfoNCE completeness term between a representation and the input it should describe.

    Two heads map the representation :math:`r` (e.g. :math:`(C_i, Z_i)`) and the input :math:`x` to a common space;
    after L2 normalisation, their scaled dot products are the critic scores of all pairs in the batch, and the loss
    is the symmetric InfoNCE at temperature :math:`\tau` (:func:`symmetric_info_nce`). Minimising it maximises a
    lower bound on :math:`I(R; X)`: this is the completeness term of FactorizedCL and InfoDisen as IndiSeek runs
    them, with the same separable critic for both so that the objectives differ only in their terms.

    Parameters
    ----------
    n_representation
        Dimension of the representation.
    n_input
        Dimension of the input.
    n_hidden
        Width of the heads' hidden layer and of the common space.
    n_layers
        Linear layers per head.
    temperature
        :math:`\tau` (0.07 as in InfoDisen's SupCon loss and CLIP's initial value).

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import ContrastiveCritic
    >>> critic = ContrastiveCritic(4, 6, n_hidden=8)
    >>> critic(torch.randn(16, 4), torch.randn(16, 6)).shape
    torch.Size([])
    """

    def __init__(
        self, n_representation: int, n_input: int, *, n_hidden: int = 50, n_layers: int = 2, temperature: float = 0.07
    ):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive, got {temperature}.")
        self.representation_head = MLP(n_representation, n_hidden, n_hidden=n_hidden, n_layers=n_layers)
        self.input_head = MLP(n_input, n_hidden, n_hidden=n_hidden, n_layers=n_layers)
        self.register_buffer("logit_scale", torch.tensor(1.0 / temperature).log())

    def forward(self, representation: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE loss of the batch (``log(batch)`` when the representation says nothing about ``x``)."""
        r = F.normalize(self.representation_head(representation), dim=1)
        v = F.normalize(self.input_head(x), dim=1)
        return symmetric_info_nce(r, v, self.logit_scale)
