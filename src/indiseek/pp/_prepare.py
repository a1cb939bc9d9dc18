"""The paper's preprocessing of CITE-seq data."""

from __future__ import annotations

import warnings

import anndata as ad
import muon as mu
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from mudata import MuData

from indiseek._constants import CLR_MEAN_KEY, LOGNORM_MEAN_KEY, PREPARE_KEY
from indiseek._inputs import guess_modalities
from indiseek._threads import keeps_torch_threads
from indiseek._validation import check_counts, check_layer, check_mudata


def _guess_modalities(mdata: MuData, rna: str | None, prot: str | None) -> tuple[str, str]:
    names = list(mdata.mod)
    guessed = guess_modalities(mdata)
    rna, prot = rna or guessed[0], prot or guessed[1]
    if rna is None or prot is None:
        raise KeyError(
            f"Could not tell the RNA and protein modalities apart among {names}; pass `rna=` and `prot=` by name."
        )
    return rna, prot


@keeps_torch_threads
def prepare(
    mdata: MuData,
    *,
    rna: str | None = None,
    prot: str | None = None,
    counts_layer: str | None = None,
    n_comps: int = 200,
    target_sum: float = 1e4,
    seed: int = 0,
    copy: bool = False,
) -> MuData | None:
    """Preprocess CITE-seq counts as the paper does: RNA to principal components, protein to centred CLR.

    * RNA: library-size normalisation to ``target_sum`` counts, ``log1p``, then PCA with ``n_comps`` components
      (scanpy), written to ``mdata[rna].layers["lognorm"]`` and ``mdata[rna].obsm["X_pca"]``
      (with ``varm["PCs"]`` and ``uns["pca"]``), and each gene's mean log-normalised expression, the PCA's centre,
      to ``mdata[rna].var["lognorm_mean"]``;
    * protein: centred log-ratio per cell (Seurat's CLR, through muon), then centred per protein, written to
      ``mdata[prot].layers["clr"]``, with each protein's centre in ``mdata[prot].var["clr_mean"]``.

    A model trained on these inputs keeps the recipe (genes, loadings, centres, ``target_sum``), so that it can
    prepare a new sample's raw counts as it prepared its own cells.

    The raw counts are left where they are (``.X`` or ``counts_layer``). The parameters are recorded in
    ``mdata.uns["indiseek_prepare"]``, which :func:`indiseek.tl.fit` reads to find these inputs.

    Parameters
    ----------
    mdata
        MuData with raw counts of both modalities, paired cell by cell.
    rna, prot
        Modality names (``None``: guessed from ``rna``/``gex`` and ``prot``/``adt``/``protein``).
    counts_layer
        Layer holding the raw counts in both modalities (``None``: ``.X``).
    n_comps
        Number of principal components (capped at ``min(n_cells, n_genes) - 1``).
    target_sum
        Counts per cell after library-size normalisation.
    seed
        Random state of the PCA solver.
    copy
        Return a preprocessed copy instead of writing into ``mdata``.

    Returns
    -------
    The preprocessed copy if ``copy=True``, else ``None``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> isk.pp.prepare(mdata, n_comps=30)
    >>> mdata["rna"].obsm["X_pca"].shape, mdata["prot"].layers["clr"].shape
    ((300, 30), (300, 25))
    """
    rna, prot = _guess_modalities(mdata, rna, prot)
    check_mudata(mdata, (rna, prot))
    mdata = mdata.copy() if copy else mdata
    counts = {}
    for name in (rna, prot):
        mod = mdata.mod[name]
        if counts_layer is not None:
            check_layer(mod, counts_layer, name)
        counts[name] = mod.X if counts_layer is None else mod.layers[counts_layer]
        where = ".X" if counts_layer is None else f".layers[{counts_layer!r}]"
        check_counts(counts[name], f"Modality {name!r} ({where})")
    n_rna = mdata.mod[rna]
    n_comps_used = int(min(n_comps, n_rna.n_obs - 1, n_rna.n_vars - 1))
    if n_comps_used < 1:
        raise ValueError(f"Too few cells or genes for PCA: {n_rna.n_obs} cells x {n_rna.n_vars} genes.")

    tmp = ad.AnnData(sp.csr_matrix(counts[rna], dtype=np.float32))
    sc.pp.normalize_total(tmp, target_sum=target_sum)
    sc.pp.log1p(tmp)
    n_rna.layers["lognorm"] = tmp.X
    n_rna.var[LOGNORM_MEAN_KEY] = np.asarray(tmp.X.mean(axis=0), dtype=np.float64).ravel()
    sc.pp.pca(n_rna, n_comps=n_comps_used, layer="lognorm", random_state=seed)

    x = counts[prot]
    # a private copy: muon's CLR works in place, and np.asarray would hand it the user's own counts
    tmp = ad.AnnData(np.array(x.toarray() if sp.issparse(x) else x, dtype=np.float32, copy=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu.prot.pp.clr(tmp, axis=1)
    clr = np.asarray(tmp.X, dtype=np.float32)
    centre = clr.mean(axis=0, keepdims=True)
    mdata.mod[prot].layers["clr"] = clr - centre
    mdata.mod[prot].var[CLR_MEAN_KEY] = centre.ravel().astype(np.float64)

    mdata.uns[PREPARE_KEY] = {
        "rna": rna,
        "prot": prot,
        "rna_input": "obsm/X_pca",
        "prot_input": "layers/clr",
        "counts_layer": counts_layer or "X",
        "n_comps": n_comps_used,
        "target_sum": float(target_sum),
        "seed": seed,
    }
    return mdata if copy else None
