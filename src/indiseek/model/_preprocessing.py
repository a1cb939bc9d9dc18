"""The reference's own preprocessing, kept with the model, and how it prepares new cells' raw counts.

When a model is trained on the inputs of :func:`indiseek.pp.prepare` (RNA principal components, protein CLR), it
records the recipe: the genes and proteins in order, the library-size target, the PCA centre and loadings, and the
protein centres. A query's raw counts are then aligned to those features by name and prepared with the reference's
numbers, never with statistics of the query's own cells.
"""

from __future__ import annotations

import warnings

import anndata as ad
import muon as mu
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from indiseek._constants import CLR_MEAN_KEY, LOGNORM_MEAN_KEY, PREPARE_KEY
from indiseek._validation import check_counts, count_problem

_SHOWN = 10


def recorded_preprocessing(mdata, names: tuple[str, str], inputs: dict[str, str]) -> dict | None:
    """The recipe of :func:`indiseek.pp.prepare` for each modality whose model input it made (``None``: none).

    ``inputs`` maps each model modality to its input spec (``"obsm/X_pca"``, ``"layers/clr"``...).
    """
    record = mdata.uns.get(PREPARE_KEY)
    if record is None:
        return None
    rna, prot = str(record["rna"]), str(record["prot"])
    counts_layer = None if str(record.get("counts_layer", "X")) == "X" else str(record["counts_layer"])
    out = {}
    if rna in names and inputs[rna] == "obsm/X_pca" and LOGNORM_MEAN_KEY in mdata[rna].var and "PCs" in mdata[rna].varm:
        mod = mdata[rna]
        out[rna] = {
            "kind": "rna",
            "var_names": np.asarray(mod.var_names, dtype=str),
            "target_sum": float(record["target_sum"]),
            "mean": mod.var[LOGNORM_MEAN_KEY].to_numpy(np.float64),
            "loadings": np.asarray(mod.varm["PCs"], dtype=np.float64),
            "counts_layer": counts_layer,
        }
    if prot in names and inputs[prot] == "layers/clr" and CLR_MEAN_KEY in mdata[prot].var:
        mod = mdata[prot]
        out[prot] = {
            "kind": "prot",
            "var_names": np.asarray(mod.var_names, dtype=str),
            "mean": mod.var[CLR_MEAN_KEY].to_numpy(np.float64),
            "counts_layer": counts_layer,
        }
    return out or None


def query_counts(adata: ad.AnnData, recipe: dict):
    """The raw counts of a query modality (``counts_layer`` if it has it, else ``.X``), or ``None`` if none."""
    layer = recipe["counts_layer"]
    x = adata.layers[layer] if layer is not None and layer in adata.layers else adata.X
    if x is None or (np.size(x.data if sp.issparse(x) else x) and count_problem(x) is not None):
        return None
    return x


def aligned_counts(adata: ad.AnnData, recipe: dict, name: str) -> sp.csr_matrix:
    """The query's counts of the reference features, in the reference's order; absent features are zeros."""
    counts = query_counts(adata, recipe)
    if counts is None:
        raise ValueError(f"Modality {name!r} of the query has no raw counts in `.X` to prepare as the reference was.")
    check_counts(counts, f"Modality {name!r} of the query")
    if not adata.var_names.is_unique:
        raise ValueError(
            f"Modality {name!r} of the query has duplicated feature names; run `.var_names_make_unique()`."
        )
    wanted = pd.Index(recipe["var_names"])
    where = adata.var_names.get_indexer(wanted)
    missing = wanted[where < 0]
    if len(missing) == len(wanted):
        raise ValueError(
            f"Modality {name!r} of the query has none of the reference's {len(wanted)} features (the reference's "
            f"start {list(wanted[:3])}, the query's {list(adata.var_names[:3])}); check the feature names."
        )
    if len(missing):
        shown = ", ".join(missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else "")
        warnings.warn(
            f"Modality {name!r} of the query lacks {len(missing)} of the reference's {len(wanted)} features "
            f"({shown}); they are taken as zero counts.",
            UserWarning,
            stacklevel=4,
        )
    counts = sp.csr_matrix(counts, dtype=np.float32)
    present = np.flatnonzero(where >= 0)
    pick = sp.csr_matrix(
        (np.ones(len(present), dtype=np.float32), (where[present], present)), (counts.shape[1], len(wanted))
    )
    return (counts @ pick).tocsr()


def lognorm(counts: sp.csr_matrix, target_sum: float) -> sp.csr_matrix:
    """Library-size normalisation to ``target_sum`` and ``log1p``, as :func:`indiseek.pp.prepare` does."""
    tmp = ad.AnnData(counts.copy())
    sc.pp.normalize_total(tmp, target_sum=target_sum)
    sc.pp.log1p(tmp)
    return tmp.X


def prepare_query(adata: ad.AnnData, recipe: dict, name: str) -> np.ndarray:
    """The model input of one query modality from its raw counts, with the reference's recipe."""
    counts = aligned_counts(adata, recipe, name)
    if recipe["kind"] == "rna":
        x = lognorm(counts, recipe["target_sum"])
        loadings = recipe["loadings"]
        return np.asarray(x @ loadings - recipe["mean"] @ loadings, dtype=np.float32)
    tmp = ad.AnnData(counts.toarray())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu.prot.pp.clr(tmp, axis=1)
    return np.asarray(np.asarray(tmp.X) - recipe["mean"], dtype=np.float32)
