import numpy as np
import pytest

import indiseek as isk


def test_prepare_writes_documented_keys_and_keeps_counts():
    mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    counts_rna, counts_prot = mdata["rna"].X.copy(), mdata["prot"].X.copy()
    isk.pp.prepare(mdata, n_comps=30)
    rna, prot = mdata["rna"], mdata["prot"]
    assert (rna.X != counts_rna).nnz == 0 and np.array_equal(prot.X, counts_prot)  # raw counts kept
    assert rna.obsm["X_pca"].shape == (300, 30) and rna.varm["PCs"].shape == (200, 30)
    # library-size normalised to 1e4 then log1p
    lognorm = rna.layers["lognorm"].toarray()
    np.testing.assert_allclose(np.expm1(lognorm).sum(axis=1), 1e4, rtol=1e-3)
    # Seurat CLR per cell: log1p(x / geometric-mean-like scale), then centred per protein
    x = counts_prot.astype(np.float64)
    clr = np.log1p(x / np.exp(np.log1p(x).mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(prot.layers["clr"], clr - clr.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(prot.layers["clr"].mean(axis=0), 0, atol=1e-5)
    record = mdata.uns["indiseek_prepare"]
    assert record["n_comps"] == 30 and record["rna"] == "rna" and record["prot"] == "prot"


def test_prepare_copy_leaves_input_untouched():
    mdata = isk.datasets.simulated_cite(n_cells=100, n_genes=80, seed=0)
    out = isk.pp.prepare(mdata, n_comps=10, copy=True)
    assert (
        "X_pca" not in mdata["rna"].obsm and "clr" not in mdata["prot"].layers and not mdata.uns.get("indiseek_prepare")
    )
    assert out["rna"].obsm["X_pca"].shape == (100, 10)


def test_prepare_caps_components_and_finds_adt_modality():
    import mudata as md

    sim = isk.datasets.simulated_cite(n_cells=40, n_genes=80, seed=0)
    mdata = md.MuData({"rna": sim["rna"].copy(), "adt": sim["prot"].copy()})
    isk.pp.prepare(mdata)
    assert mdata["rna"].obsm["X_pca"].shape == (40, 39)
    assert "clr" in mdata["adt"].layers


def test_prepare_rejects_non_counts_and_missing_modalities():
    mdata = isk.datasets.simulated_cite(n_cells=50, n_genes=60, seed=0)
    mdata["prot"].X[0, 0] = -1
    with pytest.raises(ValueError, match="negative"):
        isk.pp.prepare(mdata)
    mdata["prot"].X[0, 0] = 0.5
    with pytest.raises(ValueError, match="non-integer"):
        isk.pp.prepare(mdata)
    with pytest.raises(KeyError, match="'gex' is not in the MuData"):
        isk.pp.prepare(mdata, rna="gex", prot="nope")
    del mdata.mod["prot"]
    with pytest.raises(KeyError, match="pass `rna=` and `prot=`"):
        isk.pp.prepare(mdata)
