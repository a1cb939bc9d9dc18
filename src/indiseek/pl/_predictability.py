"""Per feature: how much of it the other modality predicts against how much the model reconstructs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._utils import finish

_COLUMNS = ("predicted_r2", "reconstructed_r2")


def predictability(
    table: pd.DataFrame,
    *,
    n_labels: int = 10,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Scatter of each feature's reconstructed against predicted :math:`R^2`, with the least predictable named.

    Features on the diagonal are told fully by the other modality; features far below it carry what only their own
    measurement reveals. The ``n_labels`` features with the largest gap between the two are labelled.

    Parameters
    ----------
    table
        The table of :meth:`indiseek.IndiSeek.predictability`.
    n_labels
        Features to name.
    ax
        Axes to draw in.
    show, save, return_fig
        As in scanpy: show the figure (default: unless saved or returned), save it to a path, return it.

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import pandas as pd
    >>> import indiseek as isk
    >>> table = pd.DataFrame({"predicted_r2": [0.8, 0.1], "reconstructed_r2": [0.9, 0.7]}, index=["CD4", "CD25"])
    >>> fig = isk.pl.predictability(table, return_fig=True)
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['CD25', 'CD4']
    """
    missing = [c for c in _COLUMNS if c not in getattr(table, "columns", ())]
    if missing:
        raise KeyError(f"`table` lacks {missing}: pass the table of `model.predictability(target)`.")
    if not isinstance(n_labels, int | np.integer) or n_labels < 0:
        raise ValueError(f"`n_labels` must be a non-negative integer, got {n_labels!r}.")
    predicted, reconstructed = (table[c].to_numpy(dtype=float) for c in _COLUMNS)
    fig, ax = plt.subplots(figsize=(4.2, 4.0)) if ax is None else (ax.figure, ax)
    ax.scatter(reconstructed, predicted, s=12, color="tab:blue", alpha=0.7, linewidths=0)
    finite = np.isfinite(predicted) & np.isfinite(reconstructed)
    low = min(0.0, *np.concatenate([predicted[finite], reconstructed[finite]])) if finite.any() else 0.0
    ax.plot([low, 1], [low, 1], color="grey", lw=1, ls=":")
    gap = np.where(finite, reconstructed - predicted, -np.inf)
    for k in np.argsort(-gap, kind="stable")[: min(n_labels, int(finite.sum()))]:
        ax.annotate(
            str(table.index[k]),
            (reconstructed[k], predicted[k]),
            fontsize=7,
            xytext=(3, -3),
            textcoords="offset points",
        )
    ax.set(xlabel="reconstructed R$^2$ (own modality)", ylabel="predicted R$^2$ (other modality)")
    return finish(fig, show=show, save=save, return_fig=return_fig)
