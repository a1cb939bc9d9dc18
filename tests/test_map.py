"""Reference mapping: queries prepared with the model's own recipe, one-modality queries, imputation, labels."""

import mudata as md
import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors

import indiseek as isk
from indiseek.model._imputation import neighbor_decode

KEYS = ("X_indiseek_shared_rna", "X_indiseek_specific_prot", "X_indiseek")


def _raw(cells):
    """The simulated cells of the ``simulated`` fixture as a user would load them: raw counts, nothing prepared."""
    return isk.datasets.simulated_cite(n_cells=2000, seed=1)[cells].copy()


def test_query_prepared_alone_embeds_as_when_prepared_with_the_reference(trained, tmp_path):
    model, mdata, _, held_out = trained
    query = _raw(held_out)
    isk.tl.write_representations(model, query)
    for key in KEYS:
        np.testing.assert_allclose(query.obsm[key], mdata.obsm[key][held_out], atol=1e-4, err_msg=key)
    # the recipe is saved with the model
    model.save(tmp_path / "model", save_anndata=False)
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=mdata)
    again = _raw(held_out)
    isk.tl.write_representations(loaded, again)
    np.testing.assert_allclose(again.obsm["X_indiseek"], query.obsm["X_indiseek"], atol=1e-6)
    # an RNA-only AnnData with its genes in another order embeds the same
    rna = query["rna"][:, ::-1].copy()
    isk.tl.write_representations(model, rna, modality="rna")
    assert sorted(rna.obsm) == ["X_indiseek_shared_rna", "X_indiseek_specific_rna"]
    np.testing.assert_allclose(rna.obsm["X_indiseek_shared_rna"], query.obsm["X_indiseek_shared_rna"], atol=1e-5)


def test_query_with_missing_or_foreign_features(trained):
    model, _, _, held_out = trained
    rna = _raw(held_out)["rna"]
    fewer = rna[:, 7:].copy()
    with pytest.warns(UserWarning, match="lacks 7 of the reference's 2000 features"):
        isk.tl.write_representations(model, fewer, modality="rna")
    foreign = rna.copy()
    foreign.var_names = [f"other{k}" for k in range(foreign.n_vars)]
    with pytest.raises(ValueError, match="none of the reference's 2000 features"):
        isk.tl.write_representations(model, foreign, modality="rna")
    assert len(foreign.obsm) == 0
    with pytest.raises(KeyError, match="none of the model's modalities"):
        isk.tl.write_representations(model, md.MuData({"atac": rna.copy()}))
    with pytest.raises(ValueError, match="name it with `modality=`"):
        isk.tl.write_representations(model, rna)
    assert len(rna.obsm) == 0


def _true_shared_r2(mdata, train, held_out):
    """Per protein: held-out R^2 of its CLR from the true shared factors, the share of it that RNA could tell."""
    factors, clr = mdata.obsm["latent_shared"], mdata["prot"].layers["clr"]
    features = np.hstack([factors, factors**2])
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(features[train], clr[train])
    predicted = ridge.predict(features[held_out])
    return np.array([pearsonr(predicted[:, j], clr[held_out, j])[0] ** 2 for j in range(clr.shape[1])])


@pytest.mark.parametrize("method", ["neighbors", "marginal"])
def test_imputation_and_predictability_follow_the_true_shared_share(trained, method):
    model, mdata, train, held_out = trained
    truth = _true_shared_r2(mdata, train, held_out)
    imputed = model.impute(_raw(held_out)["rna"], source="rna", method=method, n_samples=50)
    assert imputed.uns["indiseek_imputed"]["method"] == method
    measured = mdata["prot"].layers["clr"][held_out]
    assert list(imputed.var_names) == list(mdata["prot"].var_names) and (imputed.layers["std"] > 0).all()
    r = np.array([pearsonr(imputed.X[:, j], measured[:, j])[0] for j in range(measured.shape[1])])
    table = model.predictability("prot", method=method, n_samples=50)
    rho_r, rho_table = spearmanr(r, truth)[0], spearmanr(table["predicted_r2"], truth)[0]
    print(
        f"{method}: per-protein r: mean {r.mean():.3f}; Spearman with the true shared share: r {rho_r:.3f}, "
        f"table {rho_table:.3f}"
    )
    assert r.mean() > 0.3
    assert rho_r > 0.6 and rho_table > 0.6
    assert (table["reconstructed_r2"] >= table["predicted_r2"] - 0.05).all()
    shares = table["predictable_share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_neighbor_imputation_is_the_mean_and_spread_of_the_nearest_reconstructions():
    class Identity(torch.nn.Module):  # a "decoder" that returns its shared input, so the answer is known
        input_scale = torch.ones(2)

        def decode(self, z, c, t, batch):
            return c + (0.0 if batch is None else batch.sum(dim=1, keepdim=True))

    rng = np.random.default_rng(0)
    c_reference, c_query = (torch.as_tensor(rng.normal(size=(n, 3)), dtype=torch.float32) for n in (200, 37))
    targets = torch.as_tensor(rng.normal(size=(200, 3)), dtype=torch.float32)
    mean, std = neighbor_decode(Identity(), c_query, c_reference, (targets, targets), 1, 7, lambda d: d * 2, None, 5)
    expected = KNeighborsRegressor(7).fit(c_reference.numpy(), 2 * targets.numpy()).predict(c_query.numpy())
    np.testing.assert_allclose(mean, expected, atol=1e-5)
    rows = NearestNeighbors(n_neighbors=7).fit(c_reference.numpy()).kneighbors(c_query.numpy(), return_distance=False)
    np.testing.assert_allclose(std, (2 * targets.numpy())[rows].std(axis=1), atol=1e-5)
    batch = torch.ones(37, 2)  # decoded in each query cell's batch: here a shift of 2 before the units' factor 2
    shifted, _ = neighbor_decode(Identity(), c_query, c_reference, (targets, targets), 1, 7, lambda d: d * 2, batch)
    np.testing.assert_allclose(shifted, expected + 4, atol=1e-5)


def test_bad_imputation_options_are_refused_before_anything_changes(trained):
    model, _, _, held_out = trained
    query = md.MuData({"rna": _raw(held_out[:20])["rna"].copy()})
    for options, message in (
        ({"method": "mean"}, "Unknown imputation method 'mean'"),
        ({"n_neighbors": 0}, "`n_neighbors` must be a positive integer"),
        ({"n_samples": 2.5}, "`n_samples` must be a positive integer"),
    ):
        with pytest.raises(ValueError, match=message):
            isk.tl.impute(model, query, source="rna", **options)
        assert list(query.mod) == ["rna"]


def test_tl_impute_adds_a_modality_and_refuses_clashes(trained):
    model, _, _, held_out = trained
    rna = _raw(held_out[:60])["rna"].copy()
    rna.var_names = ["protein03", *rna.var_names[1:]]  # a gene named as a protein (CD4 is both) is no obstacle
    query = md.MuData({"rna": rna})
    isk.tl.impute(model, query, source="rna")
    assert query["prot_imputed"].shape == (60, 25) and query.n_vars == 2025
    assert list(query["prot_imputed"].var_names) == list(model.adata["prot"].var_names)
    with pytest.raises(ValueError, match="already has a modality 'prot_imputed'"):
        isk.tl.impute(model, query, source="rna", n_samples=5)
    with pytest.raises(ValueError, match="`source` must be one of"):
        isk.tl.impute(model, query, source="atac")


def test_transfer_labels_from_rna_alone_and_from_both(trained):
    model, mdata, train, held_out = trained
    reference = mdata[train].copy()
    raw = _raw(held_out)
    truth, query = raw.obs, raw["rna"].copy()
    assert "cell_type" not in query.obs
    isk.tl.write_representations(model, query, modality="rna")
    accuracy = {}
    for key in ("cell_type", "cell_type_coarse"):
        isk.tl.transfer_labels(reference, query, key)
        accuracy[key] = float(np.mean(query.obs[f"{key}_predicted"].astype(str) == truth[key].astype(str).to_numpy()))
    # both modalities: the joint representation
    isk.tl.write_representations(model, raw)
    isk.tl.transfer_labels(reference, raw, "cell_type", use_rep="X_indiseek", key_added="joint")
    accuracy["joint"] = float(np.mean(raw.obs["joint"] == raw.obs["cell_type"]))
    print("label transfer accuracy:", {k: round(v, 3) for k, v in accuracy.items()})
    # RNA's shared features know the lineages (and A's shared sub-lineages), not the RNA- or protein-specific
    # subtypes of B and C; the joint representation knows all nine types
    assert accuracy["cell_type_coarse"] > 0.9 and accuracy["joint"] > 0.8
    assert query.obs["cell_type_predicted_confidence"].between(1 / 15, 1).all()
    before = query.obs.copy()
    with pytest.raises(KeyError, match="not a column"):
        isk.tl.transfer_labels(reference, query, "lineage_typo")
    reference.obs.loc[reference.obs_names[0], "cell_type"] = np.nan
    with pytest.raises(ValueError, match="missing label"):
        isk.tl.transfer_labels(reference, query, "cell_type")
    with pytest.raises(KeyError, match="X_indiseek_shared_prot"):
        isk.tl.transfer_labels(reference, query, "cell_type", use_rep="X_indiseek_shared_prot")
    assert query.obs.equals(before)
