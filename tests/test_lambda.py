"""The presets and lam="auto": the rule's settings, the path it trains, and what it records."""

import matplotlib
import numpy as np
import pytest
import torch
from conftest import QUIET

import indiseek as isk
from indiseek.model._lambda import LAMBDA_PATH, knee, leakage, path_segments
from indiseek.model._presets import PAPER, preset_settings

matplotlib.use("Agg")


def test_presets_adapt_networks_to_cells_and_keep_the_paper_networks():
    cells = (600, 1_999, 2_000, 9_999, 10_000, 90_000)
    assert [preset_settings("auto", n)["n_layers"] for n in cells] == [2, 2, 3, 3, 5, 5]
    # dropout on samples below 10,000 cells; from there the paper's networks, without it
    assert [preset_settings("auto", n)["dropout"] for n in cells] == [0.2, 0.2, 0.2, 0.2, 0.0, 0.0]
    assert [preset_settings("auto", n)["input_dropout"] for n in cells] == [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert all(preset_settings("auto", n)["lam"] == "auto" for n in cells)
    paper = {"n_hidden": 50, "n_layers": 5, "dropout": 0.0, "input_dropout": 0.0, "lam": 10.0}
    assert preset_settings("paper", 600) == PAPER == paper
    with pytest.raises(ValueError, match="preset"):
        preset_settings("small", 600)


def test_model_records_resolved_settings_and_keywords_win(tiny):
    model = isk.IndiSeek(_setup(tiny), n_layers=4)
    params = model.init_params_["non_kwargs"]
    assert params["n_layers"] == 4 and params["dropout"] == 0.2 and params["lam"] == "auto"  # 240 cells: auto
    assert params["input_dropout"] == 0.5 and model.module.input_dropout == 0.5
    paper = isk.IndiSeek(_setup(tiny), preset="paper")
    assert {k: paper.init_params_["non_kwargs"][k] for k in PAPER} == PAPER
    assert paper.module.lam == 10.0 and not paper.lam_auto_


def test_knee_takes_the_largest_gain_in_reconstruction_over_leakage():
    assert knee(np.array([1.0, 0.4, 0.3, 0.25]), np.array([0.0, 0.05, 0.3, 0.9])) == 1
    assert knee(np.array([1.0, 0.9, 0.2, 0.1]), np.array([0.0, 0.0, 0.05, 0.9])) == 2
    assert knee(np.array([1.0, 0.5, 0.2]), np.zeros(3)) == 2  # no leakage anywhere: the best reconstruction


def test_leakage_reads_a_linear_dependence_on_held_out_rows():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(400, 5))
    independent = rng.normal(size=(400, 8))
    dependent = np.hstack([c, rng.normal(size=(400, 3))])
    assert leakage(independent[:300], c[:300], independent[300:], c[300:]) < 0.05
    assert leakage(dependent[:300], c[:300], dependent[300:], c[300:]) > 0.95


def test_auto_lambda_trains_the_path_and_records_it(tmp_path):
    mdata = isk.datasets.simulated_cite(n_cells=400, n_genes=120, seed=2)
    model = isk.tl.fit(mdata, n_comps=20, n_hidden=16, max_epochs_shared=5, max_epochs_specific=16, **QUIET)
    path = model.lambda_path_
    assert list(path["lam"]) == list(LAMBDA_PATH) and path["chosen"].sum() == 1
    assert model.module.lam == path.loc[path["chosen"], "lam"].item() == mdata.uns["indiseek"]["lam"]
    assert ((path["leakage"] >= 0) & (path["leakage"] <= 1)).all() and (path["reconstruction"] > 0).all()
    # segments of 8 + 4 x 2 epochs, then 4 at the chosen lambda, in one history
    assert len(model.history["specific_loss_train"]) == 8 + 4 * 2 + 4
    recorded = mdata.uns["indiseek"]["lambda_path"]
    np.testing.assert_array_equal(recorded["reconstruction"], path["reconstruction"].to_numpy())
    final = model.get_latent_representation(mdata, modality="prot", kind="specific")
    segments = {
        lam: model.get_latent_representation(mdata, modality="prot", kind="specific") for lam in path_segments(model)
    }
    assert list(segments) == list(LAMBDA_PATH)
    assert not np.allclose(segments[1.0], segments[10_000.0])  # each segment's own weights were loaded
    np.testing.assert_array_equal(model.get_latent_representation(mdata, modality="prot", kind="specific"), final)
    fig = isk.pl.lambda_path(mdata, return_fig=True)
    assert fig.axes[0].get_title() == f"chosen $\\lambda$ = {model.module.lam:g}"
    model.save(tmp_path / "model", save_anndata=False)
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=mdata)
    assert loaded.lambda_path_.equals(path)
    assert list(path_segments(loaded)) == []  # the segments' weights are not saved


def test_auto_lambda_needs_validation_cells_and_says_so_before_training(tiny):
    model = isk.IndiSeek(_setup(tiny), n_hidden=8)
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    with pytest.raises(ValueError, match=r"validation_size` > 0, or .* fixed `lam`"):
        model.train(2, 2, validation_size=0.0, seed=0, **QUIET)
    assert model.trained_stages_ == []
    assert torch.equal(torch.get_rng_state(), rng_before)  # refused before seeding: the caller's RNG is untouched
    fixed = isk.IndiSeek(_setup(tiny), n_hidden=8, lam=10.0)
    fixed.train(2, 2, validation_size=0.0, seed=0, **QUIET)  # the fix the message names
    assert fixed.trained_stages_ == ["shared", "specific"]


def test_lambda_path_plot_explains_a_missing_path(tiny):
    with pytest.raises(KeyError, match='lam="auto"'):
        isk.pl.lambda_path(tiny)


def _setup(mdata):
    isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    return mdata
