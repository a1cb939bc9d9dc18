"""The NeurIPS 2021 bone-marrow CITE-seq data set (GEO GSE194122), downloaded with pooch."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
from mudata import MuData

#: GEO supplementary file: one AnnData with GEX and ADT features, raw counts in ``layers["counts"]``.
BMMC_CITE_URL = (
    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE194nnn/GSE194122/suppl/"
    "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz"
)
_FILE = "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad"


#: ``var["feature_types"]`` values of RNA and protein features: the NeurIPS 2021 files' and 10x Genomics'.
_FEATURE_TYPES = {"rna": ("GEX", "Gene Expression"), "prot": ("ADT", "Antibody Capture")}


def cite_h5ad_to_mudata(adata: ad.AnnData) -> MuData:
    """Split one CITE-seq AnnData (RNA and protein features side by side) into a MuData with raw counts.

    Parameters
    ----------
    adata
        AnnData with ``var["feature_types"]`` in {``"GEX"``, ``"ADT"``} (the NeurIPS 2021 files) or {``"Gene
        Expression"``, ``"Antibody Capture"``} (10x Genomics), and raw counts in ``layers["counts"]`` or, without
        that layer, in ``.X``.

    Returns
    -------
    MuData
        Modalities ``rna`` and ``prot``, raw counts as ``.X`` (sparse float32), and the cell metadata
        (``cell_type``, ``batch``, ...) in ``mdata.obs``.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> from indiseek.datasets import cite_h5ad_to_mudata
    >>> var = pd.DataFrame({"feature_types": ["GEX", "GEX", "ADT"]}, index=["g1", "g2", "CD3"])
    >>> a = ad.AnnData(np.zeros((2, 3)), var=var, layers={"counts": np.ones((2, 3))})
    >>> cite_h5ad_to_mudata(a).shape
    (2, 3)
    """
    if "feature_types" not in adata.var:
        raise ValueError(
            'Expected a CITE-seq AnnData with `var["feature_types"]` (GEX/ADT or Gene Expression/Antibody Capture); '
            f"got var columns {list(adata.var.columns)}."
        )
    counts_of_all = adata.layers["counts"] if "counts" in adata.layers else adata.X
    kinds = adata.var["feature_types"].astype(str)
    mods = {}
    for name, names in _FEATURE_TYPES.items():
        mask = kinds.isin(names).to_numpy()
        if not mask.any():
            raise ValueError(
                f'No {" or ".join(names)} features in `var["feature_types"]` (it has {sorted(set(kinds))}).'
            )
        counts = sp.csr_matrix(counts_of_all[:, mask], dtype=np.float32)
        mods[name] = ad.AnnData(X=counts, obs=adata.obs[[]].copy(), var=adata.var.loc[mask, []].copy())
    mdata = MuData(mods)
    mdata.obs = mdata.obs.join(adata.obs)
    return mdata


def bmmc_cite(path: str | Path | None = None, *, cache_dir: str | Path | None = None) -> MuData:
    """The NeurIPS 2021 bone-marrow CITE-seq set (about 90,000 cells, 13,953 genes, 134 proteins, 45 cell types).

    Downloads the GEO supplementary file (about 0.6 GB) with pooch into ``cache_dir`` once, and returns it as a
    MuData (:func:`cite_h5ad_to_mudata`). Its SHA-256 is not pinned (it could not be fetched where this package was
    built); pooch logs the hash of the first download, which you can check against GEO.

    Parameters
    ----------
    path
        A local copy of the ``.h5ad`` or ``.h5ad.gz`` file instead of the download.
    cache_dir
        Download folder (default: pooch's cache for ``indiseek``).

    Returns
    -------
    MuData with ``rna`` and ``prot`` raw counts, and ``obs["cell_type"]``, ``obs["batch"]``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.bmmc_cite()  # doctest: +SKIP
    >>> isk.pp.prepare(mdata)  # doctest: +SKIP
    """
    if path is None:
        import pooch

        path = pooch.retrieve(
            BMMC_CITE_URL,
            known_hash=None,
            fname=_FILE + ".gz",
            path=cache_dir or pooch.os_cache("indiseek"),
            progressbar=True,
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix == ".gz":
        plain = path.with_suffix("")
        if not plain.exists():
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
        path = plain
    return cite_h5ad_to_mudata(ad.read_h5ad(path))
