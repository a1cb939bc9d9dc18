import mudata as md
import numpy as np
from conftest import QUIET, shared_data

import indiseek as isk


def test_fit_writes_documented_keys(tiny):
    model = isk.tl.fit(
        tiny, n_hidden=8, n_layers=2, n_shared=6, n_specific=4, max_epochs_shared=2, max_epochs_specific=2, **QUIET
    )
    obsm = tiny.obsm
    assert obsm["X_indiseek_shared_rna"].shape == (240, 6) and obsm["X_indiseek_specific_prot"].shape == (240, 4)
    weights = model.joint_weights_
    keys = [f"X_indiseek_{kind}_{m}" for kind in ("shared", "specific") for m in ("rna", "prot")]
    expected = np.hstack([w * obsm[k] for w, k in zip(weights, keys, strict=True)])
    np.testing.assert_allclose(obsm["X_indiseek"], expected, rtol=1e-6)
    # each weighted block's total variance on the training cells is its share of its modality's explained variance
    shares = model.explained_variance_
    np.testing.assert_allclose(shares["total"], shares["shared"] + shares["specific"], atol=1e-12)
    for w, key in zip(weights, keys, strict=True):
        kind, m = key.split("_")[2:]
        block = obsm[key][model.train_indices]
        variance = np.sum(np.var(w * block.astype(np.float64), axis=0))
        np.testing.assert_allclose(variance, max(shares.loc[m, kind], 0.01), rtol=1e-3, atol=1e-9)
    np.testing.assert_array_equal(
        obsm["X_indiseek_specific_rna"], model.get_latent_representation(modality="rna", kind="specific")
    )
    record = tiny.uns["indiseek"]
    assert record["modalities"] == ["rna", "prot"]
    assert record["inputs"] == {"rna": "obsm/X_pca", "prot": "layers/clr"}
    assert record["n_train_cells"] == len(model.train_indices) == 216  # 10 % held out for validation
    assert record["explained_variance"]["prot"] == shares.loc["prot"].to_dict()


def test_fit_copy_leaves_input_untouched():
    mdata = isk.datasets.simulated_cite(n_cells=200, n_genes=100, seed=0)
    model = isk.tl.fit(
        mdata, n_comps=10, n_hidden=8, n_layers=2, max_epochs_shared=1, max_epochs_specific=1, copy=True, **QUIET
    )
    assert "X_indiseek" not in mdata.obsm and "X_pca" not in mdata["rna"].obsm and "indiseek" not in mdata.uns
    assert model.adata is not mdata and model.adata.obsm["X_indiseek"].shape[0] == 200


def test_fit_with_explicit_inputs_and_training_subset():
    mdata = isk.datasets.simulated_cite(n_cells=200, n_genes=60, n_proteins=12, seed=0)
    model = isk.tl.fit(
        mdata,
        inputs={"rna": "X", "prot": "X"},
        n_hidden=8,
        n_layers=2,
        max_epochs_shared=1,
        max_epochs_specific=1,
        train_indices=np.arange(100),
        batch_size=32,
        **QUIET,
    )
    assert "indiseek_prepare" not in mdata.uns  # explicit inputs: no preprocessing
    assert set(model.train_indices) | set(model.validation_indices) == set(range(100))
    assert mdata.obsm["X_indiseek"].shape[0] == 200  # every cell embedded


def test_fit_on_real_bone_marrow_sample():
    mdata = md.read_h5mu(shared_data("bmmc_cite_600.h5mu"))
    model = isk.tl.fit(mdata, max_epochs_shared=5, max_epochs_specific=5, **QUIET)
    assert model.modality_names == ("rna", "adt")
    for key in ("X_indiseek_shared_rna", "X_indiseek_shared_adt", "X_indiseek_specific_rna", "X_indiseek_specific_adt"):
        assert mdata.obsm[key].shape == (600, 50) and np.isfinite(mdata.obsm[key]).all()
    assert mdata["rna"].obsm["X_pca"].shape == (600, 200)
    assert mdata["adt"].layers["clr"].shape == (600, 134)
