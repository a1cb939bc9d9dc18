import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import indiseek as isk


def test_shapes_counts_and_truth():
    mdata = isk.datasets.simulated_cite(n_cells=900, n_genes=300, n_proteins=20, seed=0)
    assert mdata["rna"].shape == (900, 300) and mdata["prot"].shape == (900, 20)
    assert sp.issparse(mdata["rna"].X)
    for x in (mdata["rna"].X.toarray(), mdata["prot"].X):
        assert x.min() >= 0 and np.all(x == np.round(x))
    assert mdata["prot"].X.min() > 0 or (mdata["prot"].X > 0).mean() > 0.9  # protein background: rarely zero
    assert list(mdata.obs["cell_type"].cat.categories) == [f"{a}{k}" for a in "ABC" for k in (1, 2, 3)]
    assert {mdata.obsm[k].shape[1] for k in ("latent_rna", "latent_prot")} == {3}
    assert mdata.obsm["latent_shared"].shape == (900, 4)


def test_default_size_is_sparse_like_scrna_seq():
    mdata = isk.datasets.simulated_cite(n_cells=300, seed=0)
    assert mdata["rna"].shape == (300, 2000) and mdata["prot"].shape == (300, 25)
    zeros = 1 - mdata["rna"].X.nnz / np.prod(mdata["rna"].shape)
    assert 0.3 < zeros < 0.9
    library = np.asarray(mdata["rna"].X.sum(axis=1)).ravel()
    assert 1000 < np.median(library) < 10000


def test_seed_reproducible():
    a = isk.datasets.simulated_cite(n_cells=100, n_genes=50, seed=5)
    b = isk.datasets.simulated_cite(n_cells=100, n_genes=50, seed=5)
    c = isk.datasets.simulated_cite(n_cells=100, n_genes=50, seed=6)
    assert (a["rna"].X != b["rna"].X).nnz == 0
    assert (a["rna"].X != c["rna"].X).nnz > 0


def test_factor_groups_independent_and_types_split_as_documented():
    mdata = isk.datasets.simulated_cite(n_cells=6000, n_genes=50, seed=0)
    shared, rna, prot = (mdata.obsm[k] for k in ("latent_shared", "latent_rna", "latent_prot"))
    cross = np.corrcoef(np.hstack([shared, rna, prot]).T)
    assert np.abs(cross[:4, 4:]).max() < 0.06 and np.abs(cross[4:7, 7:]).max() < 0.06

    obs = mdata.obs
    for lineage, by, group in (("A", "shared", shared), ("B", "rna", rna), ("C", "prot", prot)):
        cells = obs["cell_type_coarse"] == lineage
        assert set(obs.loc[cells, "distinguished_by"]) == {by}
        means = pd.DataFrame(group[cells.to_numpy()]).groupby(obs.loc[cells, "cell_type"].to_numpy()).mean()
        spread = np.ptp(means.to_numpy(), axis=0).max()
        assert spread > 2  # the sibling types differ in their own factor group
        for other in {"shared": (rna, prot), "rna": (prot,), "prot": (rna,)}[by]:
            other_means = pd.DataFrame(other[cells.to_numpy()]).groupby(obs.loc[cells, "cell_type"].to_numpy()).mean()
            assert np.ptp(other_means.to_numpy(), axis=0).max() < 0.3  # ... and not in the others


def test_too_few_cells():
    with pytest.raises(ValueError, match="n_cells"):
        isk.datasets.simulated_cite(n_cells=5)
