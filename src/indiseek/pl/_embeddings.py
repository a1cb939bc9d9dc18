"""UMAPs of the shared and specific representations (the paper's Figures 18-23), drawn through scanpy."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
from matplotlib.figure import Figure
from mudata import MuData

from indiseek._constants import umap_key
from indiseek.tl import representation_keys

from ._utils import finish


def embeddings(
    mdata: MuData,
    *,
    color: str | Sequence[str],
    use_rep: Sequence[str] | None = None,
    ncols: int = 3,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
    **kwargs,
) -> Figure | None:
    """A grid of UMAPs, one per representation (shared and specific per modality, and their concatenation).

    Draws the UMAPs that :func:`indiseek.tl.embeddings` wrote (``obsm["<rep>_umap"]``) with
    :func:`scanpy.pl.embedding`.

    Parameters
    ----------
    mdata
        MuData with IndiSeek representations (:func:`indiseek.tl.fit` or :func:`indiseek.tl.write_representations`).
    color
        Column(s) of ``mdata.obs`` to colour by; several give one row of panels each.
    use_rep
        Representations to draw (default: all IndiSeek representations present).
    ncols
        Panels per row (for one colour).
    show, save, return_fig
        As in scanpy.
    **kwargs
        Passed to :func:`scanpy.pl.embedding` (``size``, ``legend_loc``, ``palette``...).

    Returns
    -------
    The figure when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> _ = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> isk.tl.embeddings(mdata)
    >>> fig = isk.pl.embeddings(mdata, color="cell_type", return_fig=True)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['X_indiseek_shared_rna', 'X_indiseek_shared_prot']
    """
    colors = [color] if isinstance(color, str) else list(color)
    for c in colors:
        if c not in mdata.obs:
            raise KeyError(f"`color={c!r}` is not a column of `mdata.obs`; it has {list(mdata.obs.columns)}.")
    reps = list(use_rep) if use_rep is not None else representation_keys(mdata)
    missing = [k for k in reps if umap_key(k) not in mdata.obsm]
    if missing or not reps:
        raise KeyError(
            f"No UMAP of {missing or reps} in `mdata.obsm`: run `indiseek.tl.embeddings(mdata)` first (it writes "
            "`obsm['<representation>_umap']`)."
        )
    cols = min(ncols, len(reps)) if len(colors) == 1 else len(reps)
    rows = int(np.ceil(len(reps) / cols)) if len(colors) == 1 else len(colors)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for r, key in enumerate(reps):
        work = ad.AnnData(obs=mdata.obs[colors].copy(), obsm={"X_umap": np.asarray(mdata.obsm[umap_key(key)])})
        for k, c in enumerate(colors):
            ax = axes[k, r] if len(colors) > 1 else axes[r // cols, r % cols]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sc.pl.embedding(work, basis="X_umap", color=c, ax=ax, show=False, **kwargs)
            ax.set_title(key if len(colors) == 1 else f"{key}\n{c}", fontsize=9)
    for ax in axes.ravel()[len(reps) * len(colors) :] if len(colors) == 1 else []:
        ax.set_visible(False)
    fig.tight_layout()
    return finish(fig, show=show, save=save, return_fig=return_fig)
