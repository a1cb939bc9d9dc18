"""WNN weights, the CITE-seq plots and the bone-marrow downloader's conversion, on real and simulated data."""

import gzip
import shutil

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _snapshot import changes, snapshot
from conftest import QUIET, shared_data

import indiseek as isk


@pytest.fixture(scope="module")
def bmmc_prepared():
    mdata = md.read_h5mu(shared_data("bmmc_cite_600.h5mu"))
    isk.pp.prepare(mdata)
    return mdata


def test_wnn_weights_write_only_the_weights_and_find_rna_led_erythroid_cells(bmmc_prepared):
    mdata = bmmc_prepared.copy()
    before = snapshot(mdata)
    isk.tl.wnn_weights(mdata)
    added, removed, modified = changes(before, snapshot(mdata))
    # obs is compared column by column: the two weight columns are added, nothing else changes
    assert added == {"mdata.obs['rna:mod_weight']", "mdata.obs['adt:mod_weight']"} and not removed and not modified
    weights = mdata.obs[["rna:mod_weight", "adt:mod_weight"]].to_numpy()
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert ((weights >= 0) & (weights <= 1)).all()
    # new columns only: every other obs column and every other key unchanged
    assert list(mdata.obs.columns) == ["cell_type", "batch", "rna:mod_weight", "adt:mod_weight"]
    # the paper (and Hao et al. 2021): erythroid cells are RNA-led, T and NK cells protein-led
    mean = mdata.obs.groupby("cell_type", observed=True)["rna:mod_weight"].mean()
    erythroid = mean[["Reticulocyte", "Normoblast", "Erythroblast", "Proerythroblast"]].mean()
    t_nk = mean[["CD4+ T naive", "CD4+ T activated", "CD8+ T naive", "NK"]].mean()
    assert erythroid > t_nk + 0.2


def test_wnn_weights_graph_and_errors(bmmc_prepared):
    out = isk.tl.wnn_weights(bmmc_prepared, key_added="wnn", copy=True)
    assert "rna:mod_weight" not in bmmc_prepared.obs  # copy=True leaves the input alone
    assert out.obsp["wnn_connectivities"].shape == (600, 600)
    assert out.uns["wnn"]["connectivities_key"] == "wnn_connectivities"
    raw = md.read_h5mu(shared_data("bmmc_cite_600.h5mu"))
    with pytest.raises(KeyError, match="pp.prepare"):
        isk.tl.wnn_weights(raw)
    with pytest.raises(KeyError, match="'protein'"):
        isk.tl.wnn_weights(bmmc_prepared, rna="rna", prot="protein")
    with pytest.raises(ValueError, match="approximate"):
        isk.tl.wnn_weights(bmmc_prepared, neighbors="annoy")


def test_wnn_weights_with_approximate_neighbours_match_the_exact_ones(bmmc_prepared):
    # the search used from 50,000 cells on, forced here on the real sample
    exact = isk.tl.wnn_weights(bmmc_prepared, neighbors="exact", copy=True).obs["rna:mod_weight"]
    approx = isk.tl.wnn_weights(bmmc_prepared, neighbors="approximate", copy=True).obs["rna:mod_weight"]
    assert np.corrcoef(exact, approx)[0, 1] > 0.95
    assert np.abs(exact - approx).mean() < 0.05
    # per-type means, which the rank agreement uses, keep their order
    labels = bmmc_prepared.obs["cell_type"]
    assert (
        exact.groupby(labels, observed=True).mean().corr(approx.groupby(labels, observed=True).mean(), "spearman")
        > 0.95
    )


def test_bmmc_download_is_converted_from_the_geo_layout(tmp_path):
    # a file in the GEO layout (one AnnData, GEX + ADT features, raw counts in a layer), built from the real sample
    small = md.read_h5mu(shared_data("bmmc_cite_600.h5mu"))
    counts = sp.hstack([small["rna"].X, small["adt"].X]).tocsr()
    var = pd.DataFrame(
        {"feature_types": ["GEX"] * small["rna"].n_vars + ["ADT"] * small["adt"].n_vars},
        index=list(small["rna"].var_names) + list(small["adt"].var_names),
    )
    geo = ad.AnnData(X=counts.log1p(), obs=small.obs.copy(), var=var, layers={"counts": counts})
    plain = tmp_path / "cite.h5ad"
    geo.write_h5ad(plain)
    with open(plain, "rb") as src, gzip.open(tmp_path / "copy.h5ad.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    mdata = isk.datasets.bmmc_cite(tmp_path / "copy.h5ad.gz")
    assert set(mdata.mod) == {"rna", "prot"}
    np.testing.assert_array_equal(mdata["rna"].X.toarray(), small["rna"].X.toarray())
    np.testing.assert_array_equal(mdata["prot"].X.toarray(), small["adt"].X.toarray())
    assert list(mdata["prot"].var_names) == list(small["adt"].var_names)
    pd.testing.assert_series_equal(mdata.obs["cell_type"], small.obs["cell_type"], check_categorical=False)
    assert (mdata.obs["batch"] == small.obs["batch"]).all()
    with pytest.raises(ValueError, match="feature_types"):
        isk.datasets.cite_h5ad_to_mudata(ad.AnnData(np.zeros((2, 2))))


def test_theta_and_rank_plots_show_the_computed_numbers(trained):
    model, mdata, train, held_out = trained
    test = mdata[held_out].copy()
    isk.tl.write_representations(model, test)
    isk.tl.theta_score(test, groupby="cell_type")
    fig = isk.pl.theta_ranking(test, groupby="cell_type", color_by="distinguished_by", return_fig=True)
    bars = [p for p in fig.axes[0].patches if p.get_width() > 0]
    table = test.uns["indiseek_theta"]
    np.testing.assert_allclose([b.get_height() for b in bars], table["theta"].sort_values(ascending=False))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(
        table.sort_values("theta", ascending=False).index
    )
    # colours follow the coarse label: all RNA-distinguished types share one colour
    colour = {
        lbl: b.get_facecolor() for lbl, b in zip(table.sort_values("theta", ascending=False).index, bars, strict=True)
    }
    rna_types = test.obs.loc[test.obs.distinguished_by == "rna", "cell_type"].astype(str).unique()
    assert len({colour[t] for t in rna_types}) == 1
    # a stand-in RNA weight that follows the truth: RNA-distinguished types high, protein-distinguished low
    weight = test.obs["distinguished_by"].map({"rna": 0.8, "shared": 0.5, "prot": 0.2}).astype(float)
    test.obs["rna:mod_weight"] = weight + 0.01 * np.random.default_rng(0).normal(size=test.n_obs)
    isk.tl.rank_agreement(test, groupby="cell_type")
    fig = isk.pl.rank_agreement(test, return_fig=True)
    result = test.uns["indiseek_rank_agreement"]
    assert result["rho"] > 0.6
    assert f"{result['rho']:.3f}" in fig.axes[0].get_title()
    points = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(points, result["table"][["rank_weight", "rank_theta"]].to_numpy())
    with pytest.raises(KeyError, match="theta_score"):
        isk.pl.theta_ranking(mdata[:10].copy())


def test_embeddings_grid_draws_every_representation_without_writing(tiny):
    isk.tl.fit(tiny, n_hidden=8, n_layers=2, max_epochs_shared=2, max_epochs_specific=2, **QUIET)
    with pytest.raises(KeyError, match="tl.embeddings"):
        isk.pl.embeddings(tiny, color="cell_type")
    before = snapshot(tiny)
    isk.tl.embeddings(tiny)
    added, removed, modified = changes(before, snapshot(tiny))
    reps = ["X_indiseek_shared_rna", "X_indiseek_shared_prot", "X_indiseek_specific_rna", "X_indiseek_specific_prot"]
    assert added == {f"mdata.obsm['{k}_umap']" for k in [*reps, "X_indiseek"]} and not removed and not modified
    before = snapshot(tiny)
    fig = isk.pl.embeddings(tiny, color=["cell_type", "distinguished_by"], return_fig=True)
    assert not any(changes(before, snapshot(tiny)))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 10 and titles[0] == "X_indiseek_shared_rna\ncell_type"
    with pytest.raises(KeyError, match="nope"):
        isk.pl.embeddings(tiny, color="nope")


def test_cite_seq_study_scores_held_out_cells_and_the_raw_reference():
    from scipy.stats import spearmanr

    from indiseek.benchmarks.cite_seq import _split, run_cite_seq, summarise, to_markdown

    mdata = md.read_h5mu(shared_data("bmmc_cite_600.h5mu"))
    isk.pp.prepare(mdata)
    # a stand-in for the WNN weight (WNN itself is tested above): the study must not recompute it
    mdata.obs["rna:mod_weight"] = np.random.default_rng(0).uniform(size=mdata.n_obs)
    mdata.obs["truth"] = -mdata.obs["rna:mod_weight"]  # a per-cell truth that ranks the types in reverse
    runs = run_cite_seq(
        mdata,
        objectives=["indiseek", "clip"],
        lams=[10.0],
        seeds=[0],
        truth_key="truth",
        max_epochs_shared=2,
        max_epochs_specific=2,
    )
    assert list(runs["objective"]) == ["raw", "indiseek", "clip"]
    assert np.isnan(runs.loc[runs.objective == "clip", "rho"]).all() and "ari_joint" in runs
    # the raw reference by hand: theta on RNA PCs vs ADT CLR of the held-out half, per-type means, Spearman
    train, held_out = _split(mdata.n_obs, 0.5, 0)
    assert len(train) == len(held_out) == 300 and not set(train) & set(held_out)
    test = mdata[held_out].copy()
    test.obsm["a"], test.obsm["b"] = test["rna"].obsm["X_pca"], test["adt"].layers["clr"]
    isk.tl.theta_score(test, "cell_type", use_rep=("a", "b"))
    frame = test.obs[["cell_type", "indiseek_theta", "rna:mod_weight"]].dropna()
    means = frame.groupby("cell_type", observed=True).agg(["mean", "size"])
    means = means[means[("indiseek_theta", "size")] >= 5]
    expected = spearmanr(means[("indiseek_theta", "mean")], means[("rna:mod_weight", "mean")]).statistic
    assert runs.loc[runs.objective == "raw", "rho"].item() == pytest.approx(expected)
    assert runs.loc[runs.objective == "raw", "rho_truth"].item() == pytest.approx(-expected)
    assert runs["rho_truth"].notna().tolist() == [True, True, False]  # no theta for CLIP-only
    summary = summarise(runs)
    assert set(summary["objective"]) == {"raw", "indiseek", "clip"}
    table = to_markdown(summary)
    assert "| ρ vs truth |" in table.splitlines()[0] and "| raw | – |" in table
