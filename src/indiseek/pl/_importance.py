"""Bar charts of masking feature importance, as in the paper's Figures 1-2 and 6-17."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._utils import finish


def feature_importance(
    importance: pd.Series | pd.DataFrame,
    *,
    highlight: Sequence | None = None,
    title: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    r"""Plot importance per input coordinate: one bar chart, or one panel per row of a table.

    Parameters
    ----------
    importance
        A :class:`~pandas.Series` from :func:`indiseek.tl.feature_importance`, or a
        :class:`~pandas.DataFrame` with one row per panel (e.g. per :math:`\lambda`; the index labels the panels)
        and one column per coordinate.
    highlight
        Coordinates drawn in a second colour, e.g. the ideal ones (:data:`indiseek.datasets.IDEAL_COORDINATES`).
    title
        Figure title.
    ax
        Axes to draw in (one per panel); new axes when ``None``.
    show
        Show the figure (default: unless it is saved or returned).
    save
        Path to save the figure to.
    return_fig
        Return the :class:`~matplotlib.figure.Figure`.

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import pandas as pd
    >>> import indiseek as isk
    >>> table = pd.DataFrame([[0.0, 0.1, 0.9], [0.2, 0.3, 0.5]], index=["lam=0.1", "lam=1"], columns=[1, 2, 3])
    >>> fig = isk.pl.feature_importance(table, highlight=[3], return_fig=True)
    >>> len(fig.axes)
    2
    """
    table = importance.to_frame().T if isinstance(importance, pd.Series) else importance
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise TypeError(
            "`importance` must be a non-empty pandas Series or DataFrame (rows: panels, columns: features)."
        )
    n_panels = len(table)
    if ax is None:
        fig, axes = plt.subplots(1, n_panels, figsize=(2.2 * n_panels + 0.6, 2.4), sharey=True, squeeze=False)
        axes = list(axes[0])
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != n_panels:
            raise ValueError(f"`ax` must hold one axes per panel ({n_panels}), got {len(axes)}.")
        fig = axes[0].figure
    marked = {str(h) for h in (highlight or ())}
    labels = [str(c) for c in table.columns]
    colours = ["tab:orange" if label in marked else "tab:blue" for label in labels]
    top = max(1.0, float(np.nanmax(table.to_numpy())))
    for axis, (name, row) in zip(axes, table.iterrows(), strict=True):
        axis.bar(labels, row.to_numpy(), color=colours)
        axis.set_ylim(0, top)
        if n_panels > 1 or isinstance(importance, pd.DataFrame):
            axis.set_title(str(name), fontsize=9)
        axis.set_xlabel("coordinate")
    axes[0].set_ylabel("importance")
    if title:
        fig.suptitle(title)
    return finish(fig, show=show, save=save, return_fig=return_fig)
