"""The per-cell modality-importance score theta(c) of the IndiSeek paper."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from mudata import MuData

from ._labels import labels_of, specific_keys
from ._neighbors import nearest_neighbors, without_self


def same_label_counts(x: np.ndarray, labels: np.ndarray, n_neighbors: int, method: str = "auto") -> np.ndarray:
    """For each row of ``x``, how many of its ``n_neighbors`` nearest other rows (Euclidean) share its label.

    Neighbours come from :func:`nearest_neighbors` (``method``), never an all-pairs distance matrix.
    """
    (neighbours,) = without_self(nearest_neighbors(x, n_neighbors + 1, method))
    return (labels[neighbours] == labels[:, None]).sum(axis=1)


def theta_score(
    mdata: MuData,
    groupby: str,
    *,
    n_neighbors: int = 10,
    use_rep: tuple[str, str] | None = None,
    pseudocount: float = 1.0,
    neighbors: str = "auto",
    key_added: str = "indiseek_theta",
    copy: bool = False,
) -> MuData | None:
    r"""Per-cell score of which modality's specific information identifies the cell's label.

    For each cell :math:`c`, :math:`\beta_m(c)` is the share of its ``n_neighbors`` nearest cells (Euclidean) in the
    specific representation of modality :math:`m` that carry its label, and

    .. math:: \theta(c) = \log \frac{s_1(c) + a}{s_2(c) + a},

    where :math:`s_m(c) = n \beta_m(c)` counts the same-label neighbours and :math:`a` is ``pseudocount``. With
    :math:`a = 0` this is the paper's :math:`\log(\beta_1/\beta_2)`, undefined when a count is zero; the default
    :math:`a = 1` keeps every value finite and shrinks ratios of small counts towards 0. Positive values mean the
    first modality (RNA) identifies the cell's type better.

    Parameters
    ----------
    mdata
        MuData with the specific representations in ``.obsm`` (see :func:`indiseek.tl.fit`).
    groupby
        Column of ``mdata.obs`` with the labels (no missing values).
    n_neighbors
        Neighbours per cell (the paper: 10).
    use_rep
        The two ``.obsm`` keys to use (default: ``X_indiseek_specific_<mod>`` of the fitted modalities).
    pseudocount
        :math:`a` above (non-negative).
    neighbors
        Neighbour search: ``"exact"`` (scikit-learn; its time grows with the square of the cells), ``"approximate"``
        (pynndescent; close to linear) or ``"auto"``: exact below 50,000 cells, approximate from there.
    key_added
        Prefix of the keys written.
    copy
        Return a copy instead of writing into ``mdata``.

    Returns
    -------
    MuData or None
        The copy if ``copy=True``, else ``None``. Written:

        * ``obs["<key_added>"]``: :math:`\theta(c)`; ``obs["<key_added>_beta_<mod>"]``: :math:`\beta_m(c)` per modality.
          Cells of a label with a single cell (which can have no same-label neighbour) get NaN, with a warning;
        * ``uns["<key_added>"]``: a DataFrame with, per label, the number of cells, the mean :math:`\theta` and the mean
          :math:`\beta` per modality, sorted by mean :math:`\theta`.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> isk.tl.theta_score(mdata, groupby="cell_type")
    >>> mdata.uns["indiseek_theta"].columns.tolist()
    ['n_cells', 'theta', 'beta_rna', 'beta_prot']
    """
    names, keys = specific_keys(mdata, use_rep)
    labels = labels_of(mdata, groupby).to_numpy()
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer) or n_neighbors < 1:
        raise ValueError(f"`n_neighbors` must be a positive integer, got {n_neighbors!r}.")
    if n_neighbors >= mdata.n_obs:
        raise ValueError(
            f"Too few cells ({mdata.n_obs}) for `n_neighbors={n_neighbors}`: each cell needs that many other cells."
        )
    if not (np.isfinite(pseudocount) and pseudocount >= 0):
        raise ValueError(f"`pseudocount` must be a non-negative number, got {pseudocount}.")
    mdata = mdata.copy() if copy else mdata

    counts = [
        same_label_counts(np.asarray(mdata.obsm[k], dtype=np.float64), labels, n_neighbors, neighbors) for k in keys
    ]
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.log((counts[0] + pseudocount) / (counts[1] + pseudocount))
    sizes = pd.Series(labels).value_counts()
    singletons = sorted(sizes.index[sizes < 2])
    alone = np.isin(labels, singletons)
    if singletons:
        warnings.warn(
            f"Label(s) {singletons} have a single cell, which has no same-label neighbour: their theta is NaN and "
            "they are left out of the per-label table.",
            UserWarning,
            stacklevel=2,
        )
    theta = np.where(alone, np.nan, theta)
    mdata.obs[key_added] = theta
    for name, count in zip(names, counts, strict=True):
        mdata.obs[f"{key_added}_beta_{name}"] = np.where(alone, np.nan, count / n_neighbors)
    table = pd.DataFrame({"label": labels, "theta": theta})
    for name, count in zip(names, counts, strict=True):
        table[f"beta_{name}"] = count / n_neighbors
    table = table[~alone]
    summary = table.groupby("label", observed=True).mean()
    summary.insert(0, "n_cells", table.groupby("label", observed=True).size())
    summary.index.name = groupby
    mdata.uns[key_added] = summary.sort_values("theta", ascending=False)
    return mdata if copy else None
