"""Property-based tests: shapes, sparse formats, dtypes and tiny sizes."""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp
from _snapshot import changes, snapshot
from conftest import QUIET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indiseek as isk

FORMATS = ("dense", "csr", "csc")
DTYPES = (np.float32, np.float64, np.int32, np.int64)


def _matrix(rng, n, d, fmt, dtype, rate):
    x = rng.poisson(rate, (n, d)).astype(dtype)
    x[:, 0] += 1  # no cell without counts
    return x if fmt == "dense" else getattr(sp, f"{fmt}_matrix")(x)


def _mudata(n, genes, proteins, fmt, dtype, seed):
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(n)]
    rna = ad.AnnData(_matrix(rng, n, genes, fmt, dtype, 2.0))
    prot = ad.AnnData(_matrix(rng, n, proteins, fmt, dtype, 20.0))
    rna.obs_names = prot.obs_names = names
    rna.var_names = [f"g{j}" for j in range(genes)]
    prot.var_names = [f"p{j}" for j in range(proteins)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData({"rna": rna, "prot": prot})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 30),
    genes=st.integers(3, 20),
    proteins=st.integers(2, 8),
    fmt=st.sampled_from(FORMATS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_prepare_any_shape_format_dtype(n, genes, proteins, fmt, dtype, seed):
    mdata = _mudata(n, genes, proteins, fmt, dtype, seed)
    before = snapshot(mdata)
    isk.pp.prepare(mdata, n_comps=10)
    added, removed, modified = changes(before, snapshot(mdata))
    assert not removed and not modified  # counts untouched, whatever their format and dtype
    assert {"mod['rna'].var['lognorm_mean']", "mod['prot'].var['clr_mean']"} <= added
    n_comps = min(10, n - 1, genes - 1)
    assert mdata["rna"].obsm["X_pca"].shape == (n, n_comps)
    assert np.isfinite(mdata["rna"].obsm["X_pca"]).all()
    clr = mdata["prot"].layers["clr"]
    assert clr.shape == (n, proteins) and np.isfinite(clr).all()
    np.testing.assert_allclose(clr.mean(axis=0), 0, atol=1e-4)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(24, 60),
    genes=st.integers(2, 12),
    proteins=st.integers(1, 6),
    fmt=st.sampled_from(FORMATS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_fit_tiny_any_shape_format_dtype(n, genes, proteins, fmt, dtype, seed):
    mdata = _mudata(n, genes, proteins, fmt, dtype, seed)
    model = isk.tl.fit(
        mdata,
        inputs={"rna": "X", "prot": "X"},
        n_hidden=4,
        n_layers=2,
        n_shared=3,
        n_specific=2,
        max_epochs_shared=1,
        max_epochs_specific=1,
        batch_size=8,
        seed=seed,
        **QUIET,
    )
    assert mdata.obsm["X_indiseek"].shape == (n, 10)
    assert np.isfinite(mdata.obsm["X_indiseek"]).all()
    assert model.module.input_scale.dtype.is_floating_point


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(4, 60),
    dim=st.integers(1, 6),
    n_labels=st.integers(1, 5),
    k=st.integers(1, 8),
    dtype=st.sampled_from((np.float32, np.float64)),
    seed=st.integers(0, 2**16),
)
def test_theta_any_shape(n, dim, n_labels, k, dtype, seed):
    rng = np.random.default_rng(seed)
    labels = np.array([f"t{i % n_labels}" for i in range(n)])
    mdata = _mudata(n, 2, 2, "dense", np.float32, seed)
    mdata.obs["label"] = labels
    first, second = rng.normal(size=(n, dim)).astype(dtype), rng.normal(size=(n, dim)).astype(dtype)
    mdata.obsm["X_indiseek_specific_rna"], mdata.obsm["X_indiseek_specific_prot"] = first, second
    keys = ("X_indiseek_specific_rna", "X_indiseek_specific_prot")
    if k >= n:
        with pytest.raises(ValueError, match="Too few cells"):
            isk.tl.theta_score(mdata, "label", n_neighbors=k, use_rep=keys)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # single-cell labels
        isk.tl.theta_score(mdata, "label", n_neighbors=k, use_rep=keys)
        isk.tl.theta_score(mdata, "label", n_neighbors=k, use_rep=keys[::-1], key_added="swapped")
    theta = mdata.obs["indiseek_theta"].to_numpy()
    for beta in (mdata.obs["indiseek_theta_beta_rna"], mdata.obs["indiseek_theta_beta_prot"]):
        values = beta.dropna().to_numpy()
        assert ((values >= 0) & (values <= 1)).all()
    finite = ~np.isnan(theta)
    assert np.isfinite(theta[finite]).all()
    np.testing.assert_allclose(mdata.obs["swapped"].to_numpy()[finite], -theta[finite])
    assert mdata.uns["indiseek_theta"]["n_cells"].sum() == finite.sum()
