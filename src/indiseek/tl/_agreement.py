"""Agreement of the learned representations with external references: WNN weights and cell-type labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ._labels import labels_of, representation_keys


def rank_agreement(
    mdata: MuData,
    groupby: str,
    *,
    theta_key: str = "indiseek_theta",
    weight_key: str = "rna:mod_weight",
    min_cells: int = 5,
    key_added: str = "indiseek_rank_agreement",
    copy: bool = False,
) -> MuData | None:
    r"""Spearman correlation between the per-label mean theta and the per-label mean RNA modality weight.

    The paper's check of the specific representations (its Figure 4, right): labels ranked by mean
    :math:`\theta` (:func:`~indiseek.tl.theta_score`) against labels ranked by the mean weight that WNN gives RNA.

    Parameters
    ----------
    mdata
        MuData with ``obs[theta_key]`` and ``obs[weight_key]``.
    groupby
        Column of ``mdata.obs`` with the labels.
    theta_key
        Column with per-cell theta.
    weight_key
        Column with the per-cell RNA weight (muon's WNN writes ``"rna:mod_weight"``).
    min_cells
        Labels with fewer cells (with a finite theta) are left out, and listed.
    key_added
        Key in ``.uns``.
    copy
        Return a copy instead of writing into ``mdata``.

    Returns
    -------
    The copy if ``copy=True``, else ``None``. Written: ``uns["<key_added>"]`` with ``rho``, ``pvalue`` (scipy's
    two-sided test), ``n_labels``, ``left_out`` (labels below ``min_cells``) and ``table`` (per label: cells, mean theta,
    mean weight and both ranks, 1 = highest).

    Examples
    --------
    >>> import numpy as np, mudata as md, anndata as ad, pandas as pd
    >>> import indiseek as isk
    >>> obs = pd.DataFrame({"type": np.repeat(list("abcd"), 5)}, index=[f"c{i}" for i in range(20)])
    >>> mdata = md.MuData({"rna": ad.AnnData(np.zeros((20, 1)), obs=obs.copy())})
    >>> mdata.obs["type"] = obs["type"]
    >>> mdata.obs["indiseek_theta"] = np.repeat([2.0, 1.0, 0.0, -1.0], 5)
    >>> mdata.obs["rna:mod_weight"] = np.repeat([0.9, 0.6, 0.5, 0.1], 5)
    >>> isk.tl.rank_agreement(mdata, groupby="type")
    >>> float(mdata.uns["indiseek_rank_agreement"]["rho"])
    1.0
    """
    labels = labels_of(mdata, groupby)
    for key in (theta_key, weight_key):
        if key not in mdata.obs:
            hint = "run `indiseek.tl.theta_score`" if key == theta_key else "run `indiseek.tl.wnn_weights`/muon's WNN"
            raise KeyError(f"`mdata.obs[{key!r}]` is missing: {hint} first, or pass the column name.")
    mdata = mdata.copy() if copy else mdata
    frame = pd.DataFrame(
        {
            "label": labels.to_numpy(),
            "theta": mdata.obs[theta_key].to_numpy(float),
            "weight": mdata.obs[weight_key].to_numpy(float),
        }
    ).dropna()
    grouped = frame.groupby("label")
    table = pd.DataFrame(
        {"n_cells": grouped.size(), "theta": grouped["theta"].mean(), "weight": grouped["weight"].mean()}
    )
    left_out = sorted(table.index[table["n_cells"] < min_cells])
    table = table[table["n_cells"] >= min_cells]
    if len(table) < 3:
        raise ValueError(
            f"Only {len(table)} label(s) have at least {min_cells} cells; a rank correlation needs 3 or more. "
            "Lower `min_cells` or use finer labels."
        )
    table["rank_theta"] = table["theta"].rank(ascending=False)
    table["rank_weight"] = table["weight"].rank(ascending=False)
    table.index.name = groupby
    result = spearmanr(table["theta"], table["weight"])
    mdata.uns[key_added] = {
        "rho": float(result.statistic),
        "pvalue": float(result.pvalue),
        "n_labels": len(table),
        "left_out": left_out,
        "table": table.sort_values("rank_theta"),
    }
    return mdata if copy else None


def cluster_agreement(
    mdata: MuData,
    groupby: str,
    *,
    use_rep: Sequence[str] | None = None,
    n_clusters: int | None = None,
    seed: int = 0,
    key_added: str = "indiseek_cluster_agreement",
    copy: bool = False,
) -> MuData | None:
    """ARI and NMI between k-means clusters of each representation and the labels.

    Parameters
    ----------
    mdata
        MuData with the representations in ``.obsm``.
    groupby
        Column of ``mdata.obs`` with the labels.
    use_rep
        ``.obsm`` keys to cluster (default: shared and specific of each fitted modality, and ``X_indiseek``).
    n_clusters
        k of k-means (default: the number of labels).
    seed
        Random state of k-means.
    key_added
        Key in ``.uns``.
    copy
        Return a copy instead of writing into ``mdata``.

    Returns
    -------
    The copy if ``copy=True``, else ``None``. Written: ``uns["<key_added>"]``, a DataFrame with one row per
    representation and columns ``ari``, ``nmi`` (scikit-learn's adjusted Rand index and normalised mutual information).

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> isk.tl.cluster_agreement(mdata, groupby="cell_type")
    >>> mdata.uns["indiseek_cluster_agreement"].columns.tolist()
    ['ari', 'nmi']
    """
    labels = labels_of(mdata, groupby).to_numpy()
    if use_rep is None:
        use_rep = representation_keys(mdata)
    missing = [k for k in use_rep if k not in mdata.obsm]
    if missing:
        raise KeyError(f"`mdata.obsm[{missing[0]!r}]` is missing; it has {list(mdata.obsm)}.")
    k = len(np.unique(labels)) if n_clusters is None else int(n_clusters)
    if not 2 <= k <= mdata.n_obs:
        raise ValueError(f"k-means needs between 2 and {mdata.n_obs} clusters, got {k}.")
    mdata = mdata.copy() if copy else mdata
    rows = {}
    for key in use_rep:
        clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(mdata.obsm[key]))
        rows[key] = {
            "ari": adjusted_rand_score(labels, clusters),
            "nmi": normalized_mutual_info_score(labels, clusters),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "representation"
    mdata.uns[key_added] = table
    return mdata if copy else None
