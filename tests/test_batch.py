"""Batch covariates: simulated batch effects with known truth, batch-free representations, save/load, bad input."""

import mudata
import numpy as np
import pandas as pd
import pytest
import torch
from _snapshot import changes, snapshot
from conftest import QUIET
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import indiseek as isk
from indiseek.model._module import IndiSeekModule
from indiseek.model._trainingplan import IndiSeekTrainingPlan
from indiseek.nn import CategoricalCLUB, symmetric_info_nce

BLOCKS = [f"X_indiseek_{kind}_{mod}" for kind in ("shared", "specific") for mod in ("rna", "prot")]


def test_simulated_batches_have_known_effects_and_leave_the_cell_factors_as_without_batches():
    plain = isk.datasets.simulated_cite(n_cells=3000, n_genes=200, seed=4)
    batched = isk.datasets.simulated_cite(n_cells=3000, n_genes=200, n_batches=3, seed=4)
    for key in ("latent_shared", "latent_rna", "latent_prot"):
        np.testing.assert_array_equal(plain.obsm[key], batched.obsm[key])
    assert plain.obs["cell_type"].equals(batched.obs["cell_type"])
    assert "batch" not in plain.obs and "batch_effects" not in plain.uns["simulation"]
    batch = batched.obs["batch"].cat.codes.to_numpy()
    assert np.bincount(batch).min() > 900
    # the batch is drawn independently of the cell types: their contingency table is near the product of its margins
    table = np.histogram2d(batch, plain.obs["cell_type"].cat.codes, bins=(3, 9))[0] / 3000
    assert np.abs(table - table.sum(1, keepdims=True) * table.sum(0, keepdims=True)).max() < 0.01
    # the stored truth: each batch's mean log protein shift follows its foreground log-fold changes
    truth = batched.uns["simulation"]["batch_effects"]
    assert truth["rna_log_fold"].shape == (3, 200) and truth["prot_log_fold"].shape == (3, 25)
    log_prot = np.log1p(batched["prot"].X)
    shift = np.stack([log_prot[batch == k].mean(0) - log_prot.mean(0) for k in range(3)])
    expected = truth["prot_log_fold"] - truth["prot_log_fold"].mean(0)
    assert np.corrcoef(shift.ravel(), expected.ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match="n_batches"):
        isk.datasets.simulated_cite(n_cells=100, n_genes=50, n_batches=0)


def test_within_batch_contrast_is_the_size_weighted_mean_of_the_per_batch_losses():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(30, 5), dim=1)
    b = torch.nn.functional.normalize(a + 0.5 * torch.randn(30, 5), dim=1)
    groups = torch.arange(30) % 3
    scale = torch.tensor(2.0)
    per_group = [symmetric_info_nce(a[groups == g], b[groups == g], scale) for g in range(3)]
    expected = sum(loss * 10 for loss in per_group) / 30
    assert float(symmetric_info_nce(a, b, scale, groups=groups)) == pytest.approx(float(expected), rel=1e-5)
    assert float(symmetric_info_nce(a, b, scale)) != pytest.approx(float(expected), rel=1e-3)


def test_categorical_club_reads_the_batch_information_of_a_representation():
    torch.manual_seed(0)
    labels = torch.arange(1200) % 3
    onehot = torch.nn.functional.one_hot(labels).float()
    informative = onehot * 3 + 0.3 * torch.randn(1200, 3)
    independent = torch.randn(1200, 3)
    fit, fresh = slice(0, 600), slice(600, None)  # the bound is read on cells the classifier was not fitted on
    bounds = {}
    for name, x in (("informative", informative), ("independent", independent)):
        club = CategoricalCLUB(3, 3, n_hidden=16)
        optimizer = torch.optim.Adam(club.parameters(), lr=1e-2)
        for _ in range(300):
            optimizer.zero_grad()
            club.learning_loss(x[fit], onehot[fit]).backward()
            optimizer.step()
        bounds[name] = float(club(x[fresh], onehot[fresh]))
    assert bounds["informative"] > 0.9 * np.log(3)  # the mutual information of x and the batch is log 3
    assert bounds["independent"] < 0.05


def test_categorical_club_reads_a_batch_hidden_in_a_direction_of_tiny_variance():
    torch.manual_seed(1)
    labels = torch.arange(1200) % 3
    onehot = torch.nn.functional.one_hot(labels).float()
    # the batch lives in two coordinates a thousand times smaller than the three that carry the variance
    hidden = 1e-3 * (onehot[:, :2] * 3 + 0.3 * torch.randn(1200, 2))
    x = torch.cat([torch.randn(1200, 3), hidden], dim=1)
    club = CategoricalCLUB(5, 3, n_hidden=16)
    club.observe(x[:600])
    optimizer = torch.optim.Adam(club.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        club.learning_loss(x[:600], onehot[:600]).backward()
        optimizer.step()
    assert float(club(x[600:], onehot[600:])) > 0.8 * np.log(3)


def test_stage_one_with_a_batch_covariate_watches_its_infonce():
    plain, batched = (IndiSeekModule(6, 4, n_batch=n, n_hidden=8, n_layers=2) for n in (0, 3))
    assert IndiSeekTrainingPlan(plain, stage="shared").monitor == "shared_loss_validation"
    assert IndiSeekTrainingPlan(batched, stage="shared").monitor == "nce_validation"
    assert IndiSeekTrainingPlan(batched, stage="specific").monitor == "specific_loss_validation"


def test_stage_one_updates_the_whitening_once_per_batch_of_cells():
    mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=60, n_batches=3, seed=0)
    isk.pp.prepare(mdata, n_comps=10)
    model = isk.tl.fit(
        mdata,
        batch_key="batch",
        train_indices=np.arange(300),
        batch_size=64,
        n_hidden=16,
        n_layers=2,
        max_epochs_shared=2,
        max_epochs_specific=1,
        seed=0,
        **QUIET,
    )
    # 5 batches of cells an epoch (300 = 4 x 64 + 44), each read by 5 classifier steps and one encoder step
    for club in model.module.shared_batch_estimators:
        assert int(club.whiten.n_updates) == 2 * 5


@pytest.fixture(scope="module")
def batched():
    """Simulated cells in 3 batches, prepared, with a train / held-out split."""
    mdata = isk.datasets.simulated_cite(n_cells=1500, n_genes=300, n_batches=3, seed=2)
    isk.pp.prepare(mdata, n_comps=30)
    held_out = np.sort(np.random.default_rng(0).permutation(mdata.n_obs)[:400])
    return mdata, np.setdiff1d(np.arange(mdata.n_obs), held_out), held_out


def _batch_accuracy(mdata, train, held_out) -> dict[str, float]:
    """Held-out accuracy of a logistic regression that predicts the batch from each representation."""
    batch = mdata.obs["batch"].to_numpy()
    out = {}
    for key in BLOCKS:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        out[key] = clf.fit(mdata.obsm[key][train], batch[train]).score(mdata.obsm[key][held_out], batch[held_out])
    return out


def test_batch_key_makes_the_representations_batch_free(batched, tmp_path):
    mdata, train, held_out = batched
    options = {"train_indices": train, "lam": 100.0, "max_epochs_specific": 150, "seed": 0, **QUIET}
    without, with_key = mdata.copy(), mdata.copy()
    isk.tl.fit(without, **options)
    model = isk.tl.fit(with_key, batch_key="batch", **options)
    before, after = _batch_accuracy(without, train, held_out), _batch_accuracy(with_key, train, held_out)
    assert before["X_indiseek_shared_rna"] > 0.9  # without the covariate, the shared features carry the batch
    for key in BLOCKS:  # chance is 1/3; docs/benchmarks.md has the full-length fits
        assert after[key] < min(before[key] - 0.1, 0.75), (key, before, after)
    assert with_key.uns["indiseek"]["batch_key"] == "batch"
    # save / load keeps the covariate; a query is encoded in its own batches, as the reference's cells were
    model.save(tmp_path / "model", save_anndata=False)
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=with_key)
    assert loaded.batch_names == ["batch0", "batch1", "batch2"]
    torch.testing.assert_close(loaded.module.batch_prior, model.module.batch_prior)
    query = mdata[held_out].copy()
    isk.tl.write_representations(loaded, query)
    np.testing.assert_allclose(query.obsm["X_indiseek"], with_key.obsm["X_indiseek"][held_out], atol=1e-5)
    # cells of a batch the model has not seen are encoded at the training cells' batch frequencies
    unseen = query.copy()
    unseen.obs["batch"] = np.where(np.arange(unseen.n_obs) < 10, "new_run", unseen.obs["batch"].astype(str))
    with pytest.warns(UserWarning, match="10 cell\\(s\\) of unseen batches"):
        mixed = loaded.get_latent_representation(unseen, modality="rna", kind="specific")
    del unseen.obs["batch"]
    with pytest.warns(UserWarning, match="no column 'batch'"):
        prior = loaded.get_latent_representation(unseen, modality="rna", kind="specific")
    np.testing.assert_allclose(mixed[:10], prior[:10], atol=1e-6)
    np.testing.assert_allclose(mixed[10:], query.obsm["X_indiseek_specific_rna"][10:], atol=1e-5)
    assert np.abs(prior[10:] - mixed[10:]).max() > 1e-3  # the batch input matters
    imputed = loaded.impute(query, source="rna", n_samples=10)
    assert imputed.shape == (len(held_out), 25) and np.isfinite(imputed.X).all()


def test_within_batch_standardization_takes_the_batch_means_out_of_the_specific_features(batched, tmp_path):
    data, train, held_out = batched
    mdata = data.copy()
    options = {"train_indices": train, "lam": 100.0, "max_epochs_specific": 150, "seed": 0, **QUIET}
    model = isk.tl.fit(mdata, batch_key="batch", standardize_specific="within_batch", **options)
    # at inference, on the training cells, every batch has mean 0 and variance 1 along every coordinate, exactly
    codes = mdata.obs["batch"].cat.codes.to_numpy()
    for mod in ("rna", "prot"):
        z = mdata.obsm[f"X_indiseek_specific_{mod}"]
        for b in range(3):
            cells = model.train_indices[codes[model.train_indices] == b]
            np.testing.assert_allclose(z[cells].mean(0), 0.0, atol=1e-3)
            np.testing.assert_allclose(z[cells].std(0, ddof=1), 1.0, atol=1e-3)
    accuracy = _batch_accuracy(mdata, train, held_out)  # chance is 1/3; pooled moments leave about 0.5 here
    assert max(accuracy["X_indiseek_specific_rna"], accuracy["X_indiseek_specific_prot"]) < 0.45, accuracy
    model.save(tmp_path / "model", save_anndata=False)  # the per-batch moments are saved with the model
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=mdata)
    z = loaded.get_latent_representation(modality="prot", kind="specific")
    np.testing.assert_allclose(z, mdata.obsm["X_indiseek_specific_prot"], atol=1e-5)
    with pytest.raises(ValueError, match="within_batch"):
        isk.IndiSeek(mdata, standardize_specific="per_batch")


def test_batch_erasure_leaves_no_linear_trace_of_the_batch_in_the_shared_features(batched, tmp_path):
    data, train, held_out = batched
    mdata = data.copy()
    options = {"train_indices": train, "lam": 100.0, "max_epochs_specific": 5, "seed": 0, **QUIET}
    model = isk.tl.fit(mdata, batch_key="batch", erase_batch=True, **options)
    assert len(model.module.shared_erasures) == 2
    # on the cells it was fitted on, every batch has the same mean shared features, exactly
    codes = mdata.obs["batch"].cat.codes.to_numpy()
    cells = model.train_indices
    for mod in ("rna", "prot"):
        c = mdata.obsm[f"X_indiseek_shared_{mod}"][cells]
        for b in range(3):
            np.testing.assert_allclose(c[codes[cells] == b].mean(0), c.mean(0), atol=1e-4)
    accuracy = _batch_accuracy(mdata, train, held_out)  # chance is 1/3
    assert max(accuracy["X_indiseek_shared_rna"], accuracy["X_indiseek_shared_prot"]) < 0.40, accuracy
    # stage 2 saw the erased shared features: they are what its decoders reconstruct from
    x1, _ = model._training_tensors()
    torch.testing.assert_close(
        model._encode(x1[:5], 0, "shared"), torch.as_tensor(mdata.obsm["X_indiseek_shared_rna"][:5])
    )
    model.save(tmp_path / "model", save_anndata=False)  # the erasure is saved with the model
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=mdata)
    query = mdata[held_out].copy()
    isk.tl.write_representations(loaded, query)
    np.testing.assert_allclose(query.obsm["X_indiseek"], mdata.obsm["X_indiseek"][held_out], atol=1e-5)
    # the map is one for every cell: cells of a batch the model has not seen get the same shared features
    query.obs["batch"] = "new_run"
    with pytest.warns(UserWarning, match="unseen batches"):
        unseen = loaded.get_latent_representation(query, modality="rna", kind="shared")
    np.testing.assert_allclose(unseen, mdata.obsm["X_indiseek_shared_rna"][held_out], atol=1e-5)
    assert not IndiSeekModule(6, 4, erase_batch=True).shared_erasures  # no covariate, nothing to erase


def test_bad_batch_keys_are_refused_and_change_nothing(tiny):
    tiny.obs["sample"] = np.where(np.arange(tiny.n_obs) < 120, "a", "b")
    before = snapshot(tiny)
    with pytest.raises(KeyError, match="`batch_key='donor'` is not a column of `mdata.obs`"):
        isk.tl.fit(tiny, batch_key="donor", **QUIET)
    tiny.obs.loc[tiny.obs_names[:3], "sample"] = np.nan
    before = snapshot(tiny)
    with pytest.raises(ValueError, match="3 missing batch label"):
        isk.tl.fit(tiny, batch_key="sample", **QUIET)
    assert changes(before, snapshot(tiny)) == (set(), set(), set())
    tiny.obs["sample"] = np.where(np.arange(tiny.n_obs) < 2, "rare", "common")
    before = snapshot(tiny)
    with pytest.raises(ValueError, match=r"\[\('rare', \d\)\].*too few cells for `batch_size=32`"):
        isk.tl.fit(tiny, batch_key="sample", batch_size=32, **QUIET)
    assert changes(before, snapshot(tiny)) == (set(), set(), set())


def test_cli_names_a_missing_batch_key(tmp_path, capsys):
    from indiseek.cli import main

    status = main(["fit", "-o", str(tmp_path / "out.h5mu"), "--n-cells", "200", "--batch-key", "donor", "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert "`batch_key='donor'` is not a column" in err and "Traceback" not in err
    assert not (tmp_path / "out.h5mu").exists()


def test_cli_standardizes_and_erases_within_batches_only_with_a_batch_key(tmp_path, capsys):
    from indiseek.cli import main

    out = tmp_path / "out.h5mu"
    assert main(["fit", "-o", str(out), "--n-cells", "200", "--erase-batch", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "erase-batch" in err and "--batch-key" in err and "Traceback" not in err
    common = ["fit", "-o", str(out), "--n-cells", "200", "--n-comps", "10", "--standardize-within-batch", "--quiet"]
    assert main(common) == 1
    err = capsys.readouterr().err
    assert "--standardize-within-batch" in err and "--batch-key" in err and "Traceback" not in err
    assert not out.exists()
    epochs = ["--max-epochs-shared", "2", "--max-epochs-specific", "2"]
    assert main([*common, "--n-batches", "2", "--batch-key", "batch", "--erase-batch", *epochs]) == 0
    params = mudata.read_h5mu(out).uns["indiseek"]["params"]
    assert params["standardize_specific"] == "within_batch" and params["erase_batch"]


def test_batch_study_compares_every_method_with_the_unintegrated_representation(monkeypatch):
    from indiseek.benchmarks import batch as study

    mdata = isk.datasets.simulated_cite(n_cells=120, n_genes=60, n_batches=2, seed=0)
    isk.pp.prepare(mdata, n_comps=10)
    calls = []

    def fake_scores(embeddings, batch, labels, reference):
        calls.append((sorted(embeddings), reference))
        return pd.DataFrame({"Batch correction": 0.5, "Bio conservation": 0.5}, index=list(embeddings))

    monkeypatch.setattr(study, "representations", lambda mdata, method, **_: {"joint": np.ones((mdata.n_obs, 2))})
    monkeypatch.setattr(study, "scib_scores", fake_scores)
    runs = study.run_batch(mdata, batch_key="batch", label_key="cell_type", methods=["indiseek_batch"], seeds=[0])
    # the principal-component regression's reference is the raw PCs + CLR even when they are not scored themselves
    assert calls == [(["indiseek_batch|joint", "raw|joint"], "raw|joint")]
    assert runs["method"].tolist() == ["indiseek_batch"]


def test_batch_study_cli_passes_within_batch_standardization_to_the_fits(monkeypatch, tmp_path):
    from indiseek.benchmarks import batch as study
    from indiseek.cli import main

    seen = []

    def fake_representations(mdata, method, *, fit_kwargs, **_):
        seen.append((method, fit_kwargs))
        return {"joint": np.ones((mdata.n_obs, 2))}

    def fake_scores(embeddings, batch, labels, reference):
        return pd.DataFrame({"Batch correction": 0.5, "Bio conservation": 0.5, "Total": 0.5}, index=list(embeddings))

    monkeypatch.setattr(study, "representations", fake_representations)
    monkeypatch.setattr(study, "scib_scores", fake_scores)
    args = ["benchmark", "batch", "--n-cells", "150", "--methods", "indiseek_batch", "-o", str(tmp_path)]
    assert main([*args, "--standardize-within-batch", "--erase-batch"]) == 0
    assert dict(seen)["indiseek_batch"] == {"standardize_specific": "within_batch", "erase_batch": True}
    seen.clear()
    assert main(args) == 0
    assert dict(seen)["indiseek_batch"] == {}
