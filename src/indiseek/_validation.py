"""Input checks with messages that say what is wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mudata import MuData


def check_mudata(mdata, modalities: tuple[str, ...]) -> None:
    """Check that ``mdata`` is a MuData holding ``modalities``, paired cell by cell in the same order."""
    if not isinstance(mdata, MuData):
        raise TypeError(
            f"Expected a MuData object, got {type(mdata).__name__}. Build one with "
            "`mudata.MuData({'rna': rna_adata, 'prot': prot_adata})`, or use `indiseek.data.from_arrays`."
        )
    missing = [m for m in modalities if m not in mdata.mod]
    if missing:
        raise KeyError(
            f"Modality {missing[0]!r} is not in the MuData; it has {list(mdata.mod)}. Pass the right names, e.g. "
            f"`modalities=({', '.join(repr(m) for m in list(mdata.mod)[:2])})`."
        )
    if mdata.is_view:
        raise ValueError("The MuData is a view; run `mdata = mdata.copy()` first.")
    if not mdata.obs_names.is_unique:
        duplicated = mdata.obs_names[mdata.obs_names.duplicated()].unique()
        raise ValueError(
            f"The MuData has {len(duplicated)} duplicated cell name(s) (e.g. {str(duplicated[0])!r}), so results "
            "written back by name would be ambiguous. Make them unique first: `mdata.obs_names_make_unique()`, then "
            "`mdata.update()`."
        )
    for m in modalities:
        mod = mdata.mod[m]
        if mod.n_obs != mdata.n_obs or not np.array_equal(mod.obs_names, mdata.obs_names):
            raise ValueError(
                f"Modality {m!r} is not paired with the MuData's cells in the same order ({mod.n_obs} cells in the "
                f"modality, {mdata.n_obs} in the MuData). IndiSeek needs every cell measured in both modalities: run "
                "`muon.pp.intersect_obs(mdata)`, then reorder each modality as "
                "`mdata.mod[m] = mdata.mod[m][mdata.obs_names].copy()` and `mdata.update()`."
            )


def check_layer(adata, layer: str, modality: str, fix: str = "") -> None:
    """Refuse a ``layer`` that ``adata`` (modality ``modality``) lacks, listing the layers it has and ``fix``.

    anndata 0.13 lists ``.X`` among the layers as ``None``; the message names only the stored layers.
    """
    if layer not in adata.layers:
        names = [name for name in adata.layers if name is not None]
        raise KeyError(f"Layer {layer!r} is not in modality {modality!r}; it has {names}.{fix}")


def check_finite(x, what: str) -> None:
    """Raise if ``x`` (dense or sparse) has NaN or infinite values."""
    values = x.data if sp.issparse(x) else np.asarray(x)
    if not np.all(np.isfinite(values)):
        n_bad = int(np.size(values) - np.isfinite(values).sum())
        raise ValueError(
            f"{what} has {n_bad} NaN or infinite value(s). Remove or impute them (e.g. `np.nan_to_num`) first."
        )


def count_problem(x) -> str | None:
    """What keeps ``x`` (dense or sparse) from being raw counts: ``"negative"``, ``"non-integer"`` or ``None``."""
    values = x.data if sp.issparse(x) else np.asarray(x)
    if values.size and values.min() < 0:
        return "negative"
    if values.size and not np.all(np.equal(np.mod(values, 1), 0)):
        return "non-integer"
    return None


def check_counts(x, what: str) -> None:
    """Raise if ``x`` (dense or sparse) is not a matrix of non-negative integer counts."""
    check_finite(x, what)
    problem = count_problem(x)
    if problem is not None:
        raise ValueError(f"{what} has {problem} values; raw counts are needed here (did you pass normalised data?).")


def check_train_indices(n_obs: int, train_indices) -> np.ndarray:
    """The positions of the cells to train on (all when ``train_indices`` is ``None``), refused if out of range."""
    cells = np.arange(n_obs) if train_indices is None else np.asarray(train_indices)
    if cells.size and not np.issubdtype(cells.dtype, np.integer):
        raise TypeError(f"`train_indices` must be integer positions, got dtype {cells.dtype}.")
    cells = cells.astype(int)
    if cells.size and (cells.min() < 0 or cells.max() >= n_obs):
        raise IndexError(f"`train_indices` must be positions in [0, {n_obs}); got {cells.min()}..{cells.max()}.")
    return cells
