"""Per-cell modality weights from muon's weighted nearest neighbours (WNN, Hao et al. 2021)."""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from mudata import MuData

from indiseek._constants import PREPARE_KEY, SCANPY_EXACT_LIMIT
from indiseek._inputs import read_input
from indiseek._threads import keeps_torch_threads
from indiseek._validation import check_finite

from ._neighbors import ApproximateNeighbors, use_approximate


def _matrix(adata: ad.AnnData, spec: str, name: str) -> np.ndarray:
    x = read_input(adata, spec, name)
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    check_finite(x, f"The WNN input of modality {name!r}")
    return np.asarray(x, dtype=np.float32)


@keeps_torch_threads
def wnn_weights(
    mdata: MuData,
    *,
    rna: str | None = None,
    prot: str | None = None,
    rna_input: str | None = None,
    prot_input: str | None = None,
    n_pcs: int = 30,
    n_neighbors: int = 20,
    neighbors: str = "auto",
    key_added: str | None = None,
    seed: int = 42,
    copy: bool = False,
) -> MuData | None:
    """Per-cell RNA and protein weights of the weighted-nearest-neighbour graph (muon's WNN).

    Builds each modality's neighbour graph with :func:`scanpy.pp.neighbors` (on the first ``n_pcs`` RNA principal
    components, and on the protein values, by default the centred CLR of :func:`indiseek.pp.prepare`), then runs
    :func:`muon.pp.neighbors`, whose per-cell modality weights say how well each modality predicts a cell's
    neighbourhood. These are the reference of the paper's rank agreement (:func:`indiseek.tl.rank_agreement`).
    The computation runs on a private MuData, so only the documented keys are written.

    Parameters
    ----------
    mdata
        MuData with the two modalities (default: as recorded by :func:`indiseek.pp.prepare`).
    rna, prot
        Modality names (default: from :func:`indiseek.pp.prepare`'s record).
    rna_input, prot_input
        Matrices to use: ``"X"``, ``"obsm/<key>"`` or ``"layers/<name>"`` (default: ``"obsm/X_pca"`` and
        ``"layers/clr"``).
    n_pcs
        Leading columns of the RNA input to use (Seurat's WNN vignette uses 30 RNA PCs).
    n_neighbors
        Neighbours per modality graph (Seurat: 20).
    neighbors
        Search of the per-modality graphs: ``"exact"`` (scikit-learn from 8,192 cells on, which avoids a failure of
        scanpy's own approximate path with current SciPy; time grows with the square of the cells),
        ``"approximate"`` (pynndescent's nearest-neighbour descent, close to linear) or ``"auto"``: exact below
        50,000 cells, approximate from there. muon's own search of candidate neighbours is approximate throughout.
    key_added
        When given, also write the WNN graph: ``obsp["<key_added>_distances"]``,
        ``obsp["<key_added>_connectivities"]`` and ``uns[key_added]`` (for ``sc.tl.umap(mdata,
        neighbors_key=key_added)``).
    seed
        Random state of muon's neighbour search.
    copy
        Return a copy instead of writing into ``mdata``.

    Returns
    -------
    The copy if ``copy=True``, else ``None``. Written: ``obs["<rna>:mod_weight"]`` and ``obs["<prot>:mod_weight"]``
    (summing to 1 per cell), and the graph keys above when ``key_added`` is given.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> isk.pp.prepare(mdata, n_comps=20)
    >>> isk.tl.wnn_weights(mdata)  # doctest: +SKIP
    >>> mdata.obs[["rna:mod_weight", "prot:mod_weight"]].sum(axis=1).round(6).unique()  # doctest: +SKIP
    array([1.])
    """
    import muon as mu

    if not isinstance(mdata, MuData):
        raise TypeError(f"Expected a MuData object, got {type(mdata).__name__}.")
    record = mdata.uns.get(PREPARE_KEY, {})
    rna, prot = rna or record.get("rna"), prot or record.get("prot")
    if rna is None or prot is None:
        raise KeyError(
            "Which modalities are RNA and protein is unknown: run `indiseek.pp.prepare(mdata)` first (it also makes "
            "the RNA PCs and protein CLR used here), or pass `rna=` and `prot=`."
        )
    rna, prot = str(rna), str(prot)
    rna_input = rna_input or "obsm/X_pca"
    prot_input = prot_input or "layers/clr"
    for name in (rna, prot):
        if name not in mdata.mod:
            raise KeyError(f"Modality {name!r} is not in the MuData; it has {list(mdata.mod)}.")
    if mdata.n_obs < 2 * n_neighbors:
        raise ValueError(f"WNN needs at least {2 * n_neighbors} cells for {n_neighbors} neighbours; got {mdata.n_obs}.")
    mdata = mdata.copy() if copy else mdata
    x_rna = _matrix(mdata.mod[rna], rna_input, rna)[:, :n_pcs]
    x_prot = _matrix(mdata.mod[prot], prot_input, prot)
    obs_names = mdata.obs_names
    if not (mdata.mod[rna].obs_names.equals(obs_names) and mdata.mod[prot].obs_names.equals(obs_names)):
        raise ValueError("The two modalities must hold the same cells in the same order as `mdata`.")
    work = md.MuData(
        {
            rna: ad.AnnData(obs=mdata.obs[[]].copy(), obsm={"X_input": x_rna}),
            prot: ad.AnnData(obs=mdata.obs[[]].copy(), obsm={"X_input": x_prot}),
        }
    )
    if use_approximate(mdata.n_obs, neighbors):
        transformer = ApproximateNeighbors(n_neighbors=n_neighbors, random_state=seed)
    else:
        transformer = "sklearn" if mdata.n_obs >= SCANPY_EXACT_LIMIT else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (rna, prot):
            sc.pp.neighbors(
                work.mod[name], use_rep="X_input", n_neighbors=n_neighbors, transformer=transformer, random_state=0
            )
        mu.pp.neighbors(work, random_state=seed)
    for name in (rna, prot):
        mdata.obs[f"{name}:mod_weight"] = work.obs[f"{name}:mod_weight"].to_numpy()
    if key_added is not None:
        mdata.obsp[f"{key_added}_distances"] = work.obsp["distances"]
        mdata.obsp[f"{key_added}_connectivities"] = work.obsp["connectivities"]
        params = dict(work.uns["neighbors"]["params"])
        mdata.uns[key_added] = {
            "connectivities_key": f"{key_added}_connectivities",
            "distances_key": f"{key_added}_distances",
            "params": params,
        }
    return mdata if copy else None
