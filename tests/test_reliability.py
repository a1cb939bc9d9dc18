"""Bad input gets a clear error; nothing but the documented keys is ever written; training failures are contained."""

import signal

import lightning.pytorch as pl
import mudata as md
import numpy as np
import pytest
import torch
from _snapshot import changes, snapshot
from conftest import QUIET
from scvi.module.base import LossOutput

import indiseek as isk
from indiseek.model import NonFiniteLossError

SCVI_KEYS = {"mdata.uns['_scvi_uuid']", "mdata.uns['_scvi_manager_uuid']"}
FIT_KEYS = {
    f"mdata.obsm['{k}']"
    for k in (
        "X_indiseek",
        "X_indiseek_shared_rna",
        "X_indiseek_shared_prot",
        "X_indiseek_specific_rna",
        "X_indiseek_specific_prot",
    )
}
PREPARE_KEYS = {
    "mod['rna'].layers['lognorm']",
    "mod['rna'].obsm['X_pca']",
    "mod['rna'].varm['PCs']",
    "mod['rna'].uns['pca']",
    "mod['prot'].layers['clr']",
    "mod['rna'].var['lognorm_mean']",
    "mod['prot'].var['clr_mean']",
    "mdata.uns['indiseek_prepare']",
}
TINY_TRAIN = {"n_hidden": 8, "n_layers": 2, "max_epochs_shared": 1, "max_epochs_specific": 1, **QUIET}


def raw(n_cells=200, seed=0):
    return isk.datasets.simulated_cite(n_cells=n_cells, n_genes=60, n_proteins=10, seed=seed)


# ------------------------------------------------------------------------------------------------ nothing lost
def test_prepare_writes_only_documented_keys():
    mdata = raw()
    before = snapshot(mdata)
    isk.pp.prepare(mdata, n_comps=10)
    added, removed, modified = changes(before, snapshot(mdata))
    assert added == PREPARE_KEYS and not removed and not modified


def test_fit_writes_only_documented_keys():
    mdata = raw()
    isk.pp.prepare(mdata, n_comps=10)
    before = snapshot(mdata)
    isk.tl.fit(mdata, **TINY_TRAIN)
    added, removed, modified = changes(before, snapshot(mdata))
    assert added == FIT_KEYS | SCVI_KEYS | {"mdata.uns['indiseek']"}
    assert not removed and not modified


def test_embedding_new_data_changes_nothing_but_registration():
    mdata = raw()
    model = isk.tl.fit(mdata, n_comps=10, **TINY_TRAIN)
    other = mdata[:50].copy()
    for key in [k for k in other.obsm if k.startswith("X_indiseek")]:
        del other.obsm[key]
    before = snapshot(other)
    model.get_latent_representation(other, modality="rna", kind="specific")
    added, removed, modified = changes(before, snapshot(other))
    assert (added | modified) <= SCVI_KEYS and not removed  # scvi-tools re-registers the copy under a new uuid
    before = snapshot(other)
    isk.tl.write_representations(model, other)
    added, removed, modified = changes(before, snapshot(other))
    assert added == FIT_KEYS and not removed and not modified


def test_copy_true_leaves_input_untouched():
    mdata = raw()
    before = snapshot(mdata)
    prepared = isk.pp.prepare(mdata, n_comps=10, copy=True)
    model = isk.tl.fit(prepared, copy=True, **TINY_TRAIN)
    assert not any(changes(before, snapshot(mdata)))
    assert model.adata is not prepared and "X_indiseek" in model.adata.obsm and "X_indiseek" not in prepared.obsm


def test_h5mu_round_trip_keeps_everything_written(tmp_path):
    mdata = raw()
    isk.tl.fit(mdata, n_comps=10, **TINY_TRAIN)
    before = snapshot(mdata)
    mdata.write_h5mu(tmp_path / "out.h5mu")
    after = snapshot(md.read_h5mu(tmp_path / "out.h5mu"))
    ours = {k for k in before if "indiseek" in k or k in PREPARE_KEYS}
    assert ours <= set(after)
    _, _, modified = changes({k: before[k] for k in ours}, {k: after[k] for k in ours})
    assert not modified, modified


# ------------------------------------------------------------------------------------------------ bad input
def test_missing_and_misspelt_modality_layer_obsm():
    mdata = raw()
    with pytest.raises(KeyError, match="'protein' is not in the MuData; it has \\['rna', 'prot'\\]"):
        isk.tl.fit(mdata, modalities=("rna", "protein"))
    mdata["prot"].layers["background"] = mdata["prot"].X.copy()
    # the stored layers only (anndata 0.13 also lists .X, as None)
    with pytest.raises(KeyError, match=r"Layer 'counts' is not in modality 'prot'; it has \['background'\]\. Run"):
        isk.tl.fit(mdata, inputs={"prot": "layers/counts"})
    with pytest.raises(KeyError, match=r"Layer 'counts' is not in modality 'rna'; it has \[\]\."):
        isk.pp.prepare(mdata, counts_layer="counts")
    del mdata["prot"].layers["background"]
    with pytest.raises(KeyError, match="`.obsm\\['X_pca'\\]` is not in modality 'rna'.*pp.prepare"):
        isk.tl.fit(mdata, inputs={"rna": "obsm/X_pca"})
    with pytest.raises(ValueError, match='must be "X", "layers/<name>" or "obsm/<key>"'):
        isk.tl.fit(mdata, inputs={"rna": "pca"})
    with pytest.raises(TypeError, match="Expected a MuData"):
        isk.tl.fit(mdata["rna"])
    three = md.MuData({"a": mdata["rna"].copy(), "b": mdata["prot"].copy(), "c": mdata["prot"].copy()})
    with pytest.raises(ValueError, match="3 modalities"):
        isk.tl.fit(three)


def test_unpaired_or_reordered_cells():
    mdata = raw()
    shuffled = md.MuData({"rna": mdata["rna"].copy(), "prot": mdata["prot"][::-1].copy()})
    with pytest.raises(ValueError, match="not paired .* same order.*intersect_obs"):
        isk.tl.fit(shuffled, **TINY_TRAIN)
    unpaired = md.MuData({"rna": mdata["rna"].copy(), "prot": mdata["prot"][:100].copy()})
    with pytest.raises(ValueError, match="not paired"):
        isk.pp.prepare(unpaired)
    with pytest.raises(ValueError, match="view"):
        isk.tl.fit(mdata[:50], **TINY_TRAIN)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(bad):
    mdata = raw()
    isk.pp.prepare(mdata, n_comps=10)
    mdata["prot"].layers["clr"][3, 2] = bad
    with pytest.raises(ValueError, match="modality 'prot' has 1 NaN or infinite"):
        isk.tl.fit(mdata, **TINY_TRAIN)
    mdata = raw()
    x = mdata["rna"].X.tolil()
    x[0, 0] = bad
    mdata["rna"].X = x.tocsr()
    with pytest.raises(ValueError, match="NaN or infinite"):
        isk.pp.prepare(mdata)


def test_counts_needed_for_prepare():
    mdata = raw()
    mdata["rna"].X = mdata["rna"].X * 0.5
    with pytest.raises(ValueError, match="non-integer values; raw counts are needed"):
        isk.pp.prepare(mdata)


def test_too_few_cells_and_bad_sizes():
    with pytest.raises(ValueError, match="Too few cells to train"):
        isk.tl.fit(raw(n_cells=15), inputs={"rna": "X", "prot": "X"}, **QUIET)
    with pytest.raises(ValueError, match="for `batch_size=128`.*smaller `batch_size`"):
        isk.tl.fit(raw(n_cells=100), n_comps=10, **QUIET)
    mdata = raw()
    with pytest.raises(ValueError, match="`lam` must be a positive finite number"):
        isk.tl.fit(mdata, lam=float("nan"), n_comps=10)
    with pytest.raises(ValueError, match="`lam` must be a positive finite number"):
        isk.tl.fit(mdata, lam=0.0, n_comps=10)
    for name, value in (("n_hidden", 0), ("n_shared", 2.5), ("n_layers", -1)):
        with pytest.raises(ValueError, match=f"`{name}` must be a positive integer"):
            isk.tl.fit(mdata, n_comps=10, **{name: value})
    with pytest.raises(ValueError, match="`batch_size` must be an integer of at least 2"):
        isk.tl.fit(mdata, n_comps=10, batch_size=1)
    with pytest.raises(ValueError, match="`validation_size` must be in"):
        isk.tl.fit(mdata, n_comps=10, validation_size=1.5)


def test_all_zero_modality_is_refused_and_constant_features_train():
    mdata = raw()
    mdata["prot"].layers["zero"] = np.zeros_like(mdata["prot"].X)
    with pytest.raises(ValueError, match="Modality 'prot' has E\\|\\|X\\|\\|\\^2 = 0.0: its values are all zero"):
        isk.tl.fit(mdata, inputs={"rna": "X", "prot": "layers/zero"}, **TINY_TRAIN)
    x = mdata["prot"].X.copy()
    x[:, 0] = 0.0  # an all-zero feature
    x[:, 1] = 7.0  # a constant feature
    mdata["prot"].layers["odd"] = x
    model = isk.tl.fit(
        mdata,
        inputs={"rna": "X", "prot": "layers/odd"},
        n_hidden=8,
        n_layers=2,
        max_epochs_shared=3,
        max_epochs_specific=3,
        **QUIET,
    )
    for key, values in model.history.items():
        assert np.isfinite(values.to_numpy(dtype=float)).all(), key
    assert np.isfinite(mdata.obsm["X_indiseek"]).all()


def test_new_data_is_prepared_with_the_recipe_or_refused_outside_the_input_space():
    mdata = raw()
    isk.pp.prepare(mdata, n_comps=10)
    model = isk.tl.fit(mdata, **TINY_TRAIN)
    renamed = raw(n_cells=60, seed=1)
    renamed["prot"].var_names = [f"X{i}" for i in range(10)]
    with pytest.raises(ValueError, match="none of the reference's 10 features"):
        model.get_latent_representation(renamed, modality="prot")
    # with the reference's recipe, raw counts are aligned by name and prepared as the reference's were
    reordered = mdata.copy()
    reordered.mod["prot"] = reordered["prot"][:, ::-1].copy()
    expected = model.get_latent_representation(modality="prot")
    np.testing.assert_allclose(model.get_latent_representation(reordered, modality="prot"), expected, atol=1e-5)
    separately = raw(n_cells=60, seed=1)
    unprepared = separately.copy()
    isk.pp.prepare(separately, n_comps=10)  # a PCA of its own is not used: the counts are
    np.testing.assert_allclose(
        model.get_latent_representation(separately, modality="rna"),
        model.get_latent_representation(unprepared, modality="rna"),
        atol=1e-6,
    )
    # without a recipe (a model of custom inputs), new data must be in the training data's input space
    model.preprocessing_ = None
    with pytest.raises(ValueError, match="'prot' has other features than the training data"):
        model.get_latent_representation(renamed, modality="prot")
    with pytest.raises(ValueError, match="its features in another order"):
        model.get_latent_representation(reordered, modality="prot")
    with pytest.raises(ValueError, match="another PCA than the training data's"):
        model.get_latent_representation(separately, modality="rna")
    same = mdata[:40].copy()  # the training data's own space: accepted
    assert model.get_latent_representation(same, modality="rna").shape == (40, 50)


# ------------------------------------------------------------------------------------------------ training failures
def test_non_finite_loss_names_stage_and_term(monkeypatch):
    mdata = raw()
    isk.pp.prepare(mdata, n_comps=10)
    isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(mdata, n_hidden=8, n_layers=2)
    model.train(2, 0, **QUIET)
    weights = {k: v.cpu().clone() for k, v in model.module.state_dict().items()}
    original = model.module.loss

    def poisoned(*args, **kwargs):
        out = original(*args, **kwargs)
        metrics = {**out.extra_metrics, "club_prot": out.extra_metrics["club_prot"] * float("nan")}
        return LossOutput(out.loss, out.reconstruction_loss, extra_metrics=metrics, n_obs_minibatch=out.n_obs_minibatch)

    monkeypatch.setattr(model.module, "loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="Stage 'specific': the loss term\\(s\\) \\['club_prot'\\]"):
        model.train(0, 2, **QUIET)
    # no step was taken with the non-finite loss: the weights are those before it (compared on the CPU, because after
    # the error Lightning's teardown moves a module trained on a GPU to the CPU)
    for key, value in model.module.state_dict().items():  # parameters and batch-norm statistics alike
        torch.testing.assert_close(value.cpu(), weights[key], msg=key)


class _CtrlC(pl.Callback):
    """Sends SIGINT to this process at the end of the given epoch of the given stage."""

    def __init__(self, stage, epoch):
        self.stage, self.epoch = stage, epoch

    def on_train_epoch_end(self, trainer, plan):
        if plan.stage == self.stage and trainer.current_epoch == self.epoch:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_leaves_a_usable_model():
    mdata = raw()
    isk.pp.prepare(mdata, n_comps=10)
    isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(mdata, n_hidden=8, n_layers=2)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.warns(UserWarning, match="interrupted in the specific stage after 2 epoch"):
        model.train(3, 50, callbacks=[_CtrlC("specific", 1)], **QUIET)
    assert signal.getsignal(signal.SIGINT) is handler  # the user's handler is back
    assert model.trained_stages_ == ["shared", "specific"]
    assert np.isfinite(model.get_latent_representation(modality="prot", kind="specific")).all()

    model = isk.IndiSeek(mdata, n_hidden=8, n_layers=2)
    with pytest.warns(UserWarning, match="interrupted in the shared stage"):
        model.train(20, 5, early_stopping=False, callbacks=[_CtrlC("shared", 0)], **QUIET)
    assert model.trained_stages_ == ["shared"]
    assert model.get_latent_representation(modality="rna", kind="shared").shape == (200, 50)
    with pytest.raises(RuntimeError, match="specific stage has not been trained"):
        model.get_latent_representation(modality="rna", kind="specific")
    model.train(0, 1, **QUIET)  # continue with stage 2 only
    assert model.get_latent_representation(modality="rna", kind="specific").shape == (200, 50)
