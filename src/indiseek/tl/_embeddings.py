"""UMAPs of the shared and specific representations, for :func:`indiseek.pl.embeddings`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import anndata as ad
import numpy as np
import scanpy as sc
from mudata import MuData

from indiseek._constants import SCANPY_EXACT_LIMIT, umap_key
from indiseek._threads import keeps_torch_threads

from ._labels import representation_keys


@keeps_torch_threads
def embeddings(
    mdata: MuData,
    *,
    use_rep: Sequence[str] | None = None,
    n_neighbors: int = 15,
    seed: int = 0,
    copy: bool = False,
) -> MuData | None:
    """A UMAP of each IndiSeek representation (shared and specific per modality, and their concatenation).

    Each representation gets its own :func:`scanpy.pp.neighbors` graph and :func:`scanpy.tl.umap`, computed in a
    private AnnData, so that the graphs of ``mdata`` stay as they are; only the coordinates are written.

    Parameters
    ----------
    mdata
        MuData with IndiSeek representations (:func:`indiseek.tl.fit` or :func:`indiseek.tl.write_representations`).
    use_rep
        ``.obsm`` keys to embed (default: all IndiSeek representations present).
    n_neighbors
        Neighbours of the UMAP graphs.
    seed
        Random state of the neighbour searches and the UMAPs.
    copy
        Return a copy of ``mdata`` with the UMAPs instead of writing to ``mdata``.

    Returns
    -------
    ``None`` (or the copy, with ``copy=True``); writes ``obsm["<rep>_umap"]`` (cells x 2) for every representation,
    which :func:`indiseek.pl.embeddings` draws.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> _ = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> isk.tl.embeddings(mdata)
    >>> mdata.obsm["X_indiseek_specific_rna_umap"].shape
    (300, 2)
    """
    reps = list(use_rep) if use_rep is not None else representation_keys(mdata)
    missing = [k for k in reps if k not in mdata.obsm]
    if missing or not reps:
        raise KeyError(f"Representations {missing or reps} are not in `mdata.obsm` (it has {list(mdata.obsm)}).")
    transformer = "sklearn" if mdata.n_obs >= SCANPY_EXACT_LIMIT else None
    coordinates = {}
    for key in reps:
        work = ad.AnnData(obs=mdata.obs[[]].copy(), obsm={"X_rep": np.asarray(mdata.obsm[key])})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.neighbors(work, use_rep="X_rep", n_neighbors=n_neighbors, transformer=transformer, random_state=seed)
            sc.tl.umap(work, random_state=seed)
        coordinates[umap_key(key)] = work.obsm["X_umap"]
    mdata = mdata.copy() if copy else mdata
    for key, value in coordinates.items():
        mdata.obsm[key] = value
    return mdata if copy else None
