"""Fully connected networks."""

from __future__ import annotations

import numbers

from torch import nn


def check_dropout(dropout: float, name: str = "dropout") -> None:
    """Raise a ``ValueError`` unless ``dropout`` (the argument ``name``) is a rate in [0, 1)."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1) (0: no dropout), got {dropout!r}.")


class MLP(nn.Sequential):
    """A ReLU multilayer perceptron with ``n_layers`` linear layers.

    The paper's networks are "5-layer ReLU MLPs of width 50": five linear maps, a ReLU after every one but the last.
    Weights are initialised to preserve the signal's variance through the ReLUs (He et al., 2015) and biases to
    zero. PyTorch's default initialisation shrinks the variance about six-fold per layer, so a deep default MLP
    starts with outputs near zero; downstream normalisation (and the CLUB estimator's variance bounds) then act on
    numerical noise.

    Parameters
    ----------
    n_input
        Input dimension.
    n_output
        Output dimension.
    n_hidden
        Width of the hidden layers.
    n_layers
        Number of linear layers (at least 1; 1 gives a linear map).
    dropout
        Dropout rate after every hidden ReLU (0 adds no dropout layers, so the layer indices and saved weights are
        those of the plain network). Active only in training mode.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import MLP
    >>> MLP(10, 3, n_hidden=16, n_layers=3)(torch.zeros(4, 10)).shape
    torch.Size([4, 3])
    >>> MLP(10, 3, n_hidden=16, n_layers=3, dropout=0.2)
    MLP(
      (0): Linear(in_features=10, out_features=16, bias=True)
      (1): ReLU()
      (2): Dropout(p=0.2, inplace=False)
      (3): Linear(in_features=16, out_features=16, bias=True)
      (4): ReLU()
      (5): Dropout(p=0.2, inplace=False)
      (6): Linear(in_features=16, out_features=3, bias=True)
    )
    """

    def __init__(self, n_input: int, n_output: int, *, n_hidden: int = 50, n_layers: int = 5, dropout: float = 0.0):
        if n_layers < 1:
            raise ValueError(f"`n_layers` must be at least 1, got {n_layers}.")
        check_dropout(dropout)
        for name, value in (("n_input", n_input), ("n_output", n_output), ("n_hidden", n_hidden)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
        widths = [n_input] + [n_hidden] * (n_layers - 1) + [n_output]
        layers: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            linear = nn.Linear(a, b)
            hidden = k < n_layers - 1
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu" if hidden else "linear")
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if hidden:
                layers.append(nn.ReLU())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
