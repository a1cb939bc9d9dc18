"""A small Transformer encoder over padded sequences."""

from __future__ import annotations

import torch
from torch import nn

from ._mlp import check_dropout


def step_mask(x: torch.Tensor, n_steps: int, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a packed sequence batch into values ``(B, T, d)`` and the boolean mask of valid steps ``(B, T)``.

    A packed row is the ``T * d`` values of a sequence, time step after time step, followed by ``T`` indicators
    (1 for a valid step, 0 for padding): the layout in which IndiSeek passes sequences through its data path.
    """
    n_values = n_steps * n_features
    if x.shape[-1] != n_values + n_steps:
        raise ValueError(
            f"Expected packed sequences of {n_values} values and {n_steps} step indicators, got {x.shape[-1]} columns."
        )
    return x[:, :n_values].reshape(-1, n_steps, n_features), x[:, n_values:] > 0.5


class SequenceEncoder(nn.Module):
    """Transformer encoder of padded sequences, pooled to one vector per sequence.

    Each time step's features are projected to ``d_model`` and a learned position embedding is added; positions
    count valid steps only, so a sequence means the same whether it is padded at the start or at the end. The
    encoder layers (pre-norm; dropout only if ``dropout`` is set) attend only between valid steps (a key-padding
    mask), and the output is the mean of the valid steps' final states (masked mean pooling), mapped linearly to
    ``n_output``. The defaults are the IndiSeek paper's MultiBench encoder: 2 layers, 2 heads, width 128.

    Parameters
    ----------
    n_steps
        Number of time steps ``T`` (the padded length).
    n_features
        Features per time step ``d``.
    n_output
        Output dimension.
    d_model
        Width of the Transformer.
    n_heads
        Attention heads per layer.
    n_layers
        Transformer encoder layers.
    dim_feedforward
        Width of each layer's feed-forward network (``None``: ``2 * d_model``).
    dropout
        Dropout rate inside the encoder layers (active only in training mode).

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import SequenceEncoder
    >>> encoder = SequenceEncoder(n_steps=5, n_features=3, n_output=4, d_model=8)
    >>> values, mask = torch.randn(2, 5 * 3), torch.tensor([[1.0, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    >>> encoder(torch.cat([values, mask], dim=1)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        n_steps: int,
        n_features: int,
        n_output: int,
        *,
        d_model: int = 128,
        n_heads: int = 2,
        n_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_dropout(dropout)
        if d_model % n_heads:
            raise ValueError(f"`d_model` ({d_model}) must be divisible by `n_heads` ({n_heads}).")
        self.n_steps, self.n_features = int(n_steps), int(n_features)
        self.project = nn.Linear(n_features, d_model)
        self.position = nn.Embedding(n_steps, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=dim_feedforward or 2 * d_model,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, n_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode packed sequences (``T * d`` values then ``T`` step indicators per row, see :func:`step_mask`)."""
        values, mask = step_mask(x, self.n_steps, self.n_features)
        position = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
        h = self.project(values) + self.position(position)
        h = self.norm(self.transformer(h, src_key_padding_mask=~mask))
        weights = mask.to(h.dtype).unsqueeze(-1)
        return self.output((h * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0))
