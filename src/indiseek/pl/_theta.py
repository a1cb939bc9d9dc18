"""The paper's Figure 4: mean theta per cell type, and its ranking against the WNN RNA weights."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from ._utils import finish


def _coarse_of(mdata: MuData, groupby: str, color_by: str | None, labels: pd.Index) -> pd.Series | None:
    """The most common coarse label of each fine label."""
    if color_by is None:
        return None
    if color_by not in mdata.obs:
        raise KeyError(f"`color_by={color_by!r}` is not a column of `mdata.obs`; it has {list(mdata.obs.columns)}.")
    pairs = pd.DataFrame({"fine": mdata.obs[groupby].astype(str), "coarse": mdata.obs[color_by].astype(str)})
    return pairs.groupby("fine")["coarse"].agg(lambda s: s.value_counts().index[0]).reindex(labels)


def theta_ranking(
    mdata: MuData,
    *,
    groupby: str | None = None,
    color_by: str | None = None,
    theta_key: str = "indiseek_theta",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    r"""Bars of the mean :math:`\theta` per label, highest first, coloured by a coarser label (Figure 4, left).

    A positive mean says the RNA-specific representation separates the label better than the protein-specific one.

    Parameters
    ----------
    mdata
        MuData after :func:`indiseek.tl.theta_score` (its per-label table is in ``uns[theta_key]``).
    groupby
        Column of ``mdata.obs`` with the labels scored (needed with ``color_by``).
    color_by
        Column with coarser labels; each bar takes the colour of its label's most common coarse label.
    theta_key
        Key of :func:`indiseek.tl.theta_score`'s output.
    ax
        Axes to draw in.
    show, save, return_fig
        As in scanpy: show the figure (default: unless saved or returned), save it to a path, return it.

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mudata as md, anndata as ad
    >>> import indiseek as isk
    >>> obs = pd.DataFrame({"type": list("aabb"), "lineage": list("xxyy")}, index=list("0123"))
    >>> mdata = md.MuData({"rna": ad.AnnData(np.zeros((4, 1)), obs=obs)})
    >>> mdata.obs = obs
    >>> mdata.uns["indiseek_theta"] = pd.DataFrame({"n_cells": [2, 2], "theta": [0.5, -0.3]}, index=["a", "b"])
    >>> fig = isk.pl.theta_ranking(mdata, groupby="type", color_by="lineage", return_fig=True)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    """
    if theta_key not in mdata.uns:
        raise KeyError(f"`mdata.uns[{theta_key!r}]` is missing: run `indiseek.tl.theta_score` first.")
    if color_by is not None and groupby is None:
        raise ValueError("Pass `groupby` (the labels that were scored) together with `color_by`.")
    table = mdata.uns[theta_key].sort_values("theta", ascending=False)
    coarse = _coarse_of(mdata, groupby, color_by, table.index.astype(str))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.32 * len(table) + 1), 3.4)) if ax is None else (ax.figure, ax)
    if coarse is None:
        colours = ["tab:blue"] * len(table)
    else:
        palette = dict(zip(sorted(coarse.unique()), plt.get_cmap("tab10").colors * 3, strict=False))
        colours = [palette[c] for c in coarse]
        for name, colour in palette.items():
            ax.bar([0], [0], color=colour, label=name, width=0)
        ax.legend(title=color_by, fontsize=7, title_fontsize=8, frameon=False, loc="upper right")
    ax.bar(np.arange(len(table)), table["theta"].to_numpy(), color=colours)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(table)), table.index.astype(str), rotation=90, fontsize=7)
    ax.set_ylabel(r"mean $\theta$ (RNA $\uparrow$, protein $\downarrow$)")
    return finish(fig, show=show, save=save, return_fig=return_fig)


def rank_agreement(
    mdata: MuData,
    *,
    key: str = "indiseek_rank_agreement",
    annotate: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    r"""Rank of the mean :math:`\theta` against the rank of the mean WNN RNA weight per label (Figure 4, right).

    Parameters
    ----------
    mdata
        MuData after :func:`indiseek.tl.rank_agreement`.
    key
        Key of its output in ``.uns``.
    annotate
        Write the label names beside the points.
    ax
        Axes to draw in.
    show, save, return_fig
        As in scanpy.

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mudata as md, anndata as ad
    >>> import indiseek as isk
    >>> mdata = md.MuData({"rna": ad.AnnData(np.zeros((2, 1)))})
    >>> table = pd.DataFrame({"rank_theta": [1.0, 2.0, 3.0], "rank_weight": [1.0, 3.0, 2.0]}, index=list("abc"))
    >>> mdata.uns["indiseek_rank_agreement"] = {"rho": 0.5, "pvalue": 0.67, "table": table}
    >>> fig = isk.pl.rank_agreement(mdata, return_fig=True)
    >>> fig.axes[0].get_title()
    'Spearman ρ = 0.500 (p = 0.67, 3 labels)'
    """
    if key not in mdata.uns:
        raise KeyError(f"`mdata.uns[{key!r}]` is missing: run `indiseek.tl.rank_agreement` first.")
    result = mdata.uns[key]
    table = result["table"]
    fig, ax = plt.subplots(figsize=(4.2, 4.2)) if ax is None else (ax.figure, ax)
    ax.scatter(table["rank_weight"], table["rank_theta"], s=18, color="tab:blue")
    if annotate:
        for name, row in table.iterrows():
            ax.annotate(
                str(name),
                (row["rank_weight"], row["rank_theta"]),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
    n = len(table)
    ax.plot([1, n], [1, n], color="grey", linewidth=0.6, linestyle="--")
    ax.set_xlabel("rank of mean WNN RNA weight")
    ax.set_ylabel(r"rank of mean $\theta$")
    ax.set_title(f"Spearman ρ = {result['rho']:.3f} (p = {result['pvalue']:.2g}, {n} labels)")
    return finish(fig, show=show, save=save, return_fig=return_fig)
