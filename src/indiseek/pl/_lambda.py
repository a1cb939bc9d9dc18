r"""The :math:`\lambda` path of ``lam="auto"``: validation reconstruction error and leakage per :math:`\lambda`."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from indiseek._constants import UNS_KEY

from ._utils import finish


def lambda_path(
    mdata: MuData,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    r"""Validation reconstruction error and leakage along the :math:`\lambda` path, the chosen :math:`\lambda` marked.

    Reconstruction error (left axis) falls and leakage (right axis: the share of the other modality's shared
    features that the specific features predict, per modality) rises with :math:`\lambda`; ``lam="auto"`` takes
    the knee (:mod:`indiseek.model` explains the rule).

    Parameters
    ----------
    mdata
        MuData after :func:`indiseek.tl.fit` with ``lam="auto"`` (the path is in ``uns["indiseek"]["lambda_path"]``).
    ax
        Axes to draw in.
    show, save, return_fig
        As in scanpy: show the figure (default: unless saved or returned), save it to a path, return it.

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import numpy as np, mudata as md, anndata as ad
    >>> import indiseek as isk
    >>> mdata = md.MuData({"rna": ad.AnnData(np.zeros((2, 1)))})
    >>> mdata.uns["indiseek"] = {
    ...     "lambda_path": {
    ...         "lam": np.array([1.0, 10.0, 100.0]),
    ...         "reconstruction": np.array([0.5, 0.3, 0.28]),
    ...         "leakage_rna": np.array([0.0, 0.05, 0.3]),
    ...         "leakage": np.array([0.0, 0.05, 0.3]),
    ...         "chosen": np.array([False, True, False]),
    ...     }
    ... }
    >>> fig = isk.pl.lambda_path(mdata, return_fig=True)
    >>> fig.axes[0].get_xscale()
    'log'
    """
    path = mdata.uns.get(UNS_KEY, {}).get("lambda_path")
    if path is None:
        raise KeyError(
            '`mdata.uns["indiseek"]["lambda_path"]` is missing: fit with `indiseek.tl.fit(mdata, lam="auto")` first.'
        )
    lam = np.asarray(path["lam"], dtype=float)
    fig, ax = plt.subplots(figsize=(4.6, 3.2)) if ax is None else (ax.figure, ax)
    ax.plot(lam, path["reconstruction"], "o-", color="black", label="reconstruction error")
    ax.set(xscale="log", xlabel=r"$\lambda$", ylabel="validation reconstruction error")
    right = ax.twinx()
    for key in (k for k in path if k.startswith("leakage_")):
        right.plot(lam, path[key], "s--", label=key.removeprefix("leakage_") + " leakage")
    right.set_ylabel("leakage (held-out R$^2$)")
    chosen = lam[np.asarray(path["chosen"], dtype=bool)]
    for value in chosen:
        ax.axvline(value, color="grey", lw=1, ls=":")
    ax.set_title(rf"chosen $\lambda$ = {chosen[0]:g}" if len(chosen) else r"$\lambda$ path")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="center right")
    return finish(fig, show=show, save=save, return_fig=return_fig)
