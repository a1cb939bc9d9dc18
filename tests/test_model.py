import copy
import logging
import warnings

import numpy as np
import pytest
import torch
from conftest import QUIET
from sklearn.linear_model import RidgeCV

import indiseek as isk
from indiseek._constants import X1_KEY, X2_KEY
from indiseek.model import IndiSeekModule
from indiseek.model._trainingplan import specific_terms


def held_out_r2(x, y):
    """R^2 of a ridge regression of y on x, fitted on half of the cells and scored on the other half."""
    n = x.shape[0] // 2
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x[:n], y[:n])
    return ridge.score(x[n:], y[n:])


def test_stage1_aligns_modalities_on_held_out_cells(trained):
    model, mdata, _, held_out = trained
    c1 = model.get_latent_representation(mdata, modality="rna", kind="shared", indices=held_out)
    c2 = model.get_latent_representation(mdata, modality="prot", kind="shared", indices=held_out)
    np.testing.assert_allclose(np.linalg.norm(c1, axis=1), 1, atol=1e-5)
    similarity = c1 @ c2.T
    top1 = (similarity.argmax(axis=1) == np.arange(len(held_out))).mean()
    rank = (similarity > similarity.diagonal()[:, None]).sum(axis=1)  # 0 = own partner ranks first
    print(f"held-out matching: top-1 {top1:.3f}, median rank {np.median(rank):.0f} of {len(held_out)}")
    # chance: top-1 = 1/500 = 0.002, median rank = 250
    assert top1 > 0.02
    assert np.median(rank) < 50


def test_stage2_disentangles_on_held_out_cells(trained):
    model, mdata, _, held_out = trained
    truth = {k: mdata.obsm[f"latent_{k}"][held_out] for k in ("shared", "rna", "prot")}
    r2 = {}
    for modality in ("rna", "prot"):
        z = model.get_latent_representation(mdata, modality=modality, kind="specific", indices=held_out)
        r2[modality] = {k: held_out_r2(z, y) for k, y in truth.items()}
    print("held-out ridge R^2 of the true factors:", {m: {k: round(v, 3) for k, v in d.items()} for m, d in r2.items()})
    # Z_rna holds the RNA-specific factors, hardly any shared ones, and nothing of the protein-specific ones
    assert r2["rna"]["rna"] > 0.3
    assert r2["rna"]["rna"] > r2["rna"]["shared"] + 0.25
    assert r2["rna"]["prot"] < 0.05
    # and likewise for the protein side
    assert r2["prot"]["prot"] > 0.3
    assert r2["prot"]["prot"] > r2["prot"]["shared"] + 0.25
    assert r2["prot"]["rna"] < 0.05


def test_explained_variance_agrees_with_validation_error(trained):
    model = trained[0]
    shares = model.explained_variance_
    print("explained variance on the validation cells:\n", shares.round(3))
    for m in ("rna", "prot"):
        # 1 - total share is the validation reconstruction error that training logs (the inputs are centred, so
        # their variance is their mean squared norm, up to the validation cells' own mean)
        error = float(model.history[f"recon_{m}_validation"].iloc[-1, 0])
        assert abs((1 - shares.loc[m, "total"]) - error) < 0.05, (m, error)
    # both simulated modalities have factors of their own: the specific features add to what the shared ones explain
    assert (shares["specific"] > 0.02).all() and (shares["shared"] > 0.1).all()
    blocks = np.split(trained[1].obsm["X_indiseek"][trained[2]], 4, axis=1)
    variances = [float(np.sum(np.var(b.astype(np.float64), axis=0))) for b in blocks]
    expected = [shares.loc[m, kind] for kind in ("shared", "specific") for m in ("rna", "prot")]
    np.testing.assert_allclose(variances, expected, rtol=0.1)


def test_history_has_both_stages_and_loss_terms(trained):
    model = trained[0]
    history = model.history
    for key in (
        "shared_loss_train",
        "shared_loss_validation",
        "club_rna_train",
        "recon_prot_validation",
        "specific_loss_train",
        "estimator_nll_train",
    ):
        assert key in history, key
    # the reconstruction improves in stage 2
    recon = history["recon_rna_validation"].to_numpy().ravel()
    assert recon[-1] < 0.8 * recon[0]
    assert model.trained_stages_ == ["shared", "specific"] and model.is_trained


def test_new_cells_embed_like_training_cells(trained):
    model, mdata, _, held_out = trained
    full = model.get_latent_representation(mdata, modality="prot", kind="specific")
    subset = mdata[held_out].copy()
    part = model.get_latent_representation(subset, modality="prot", kind="specific")
    np.testing.assert_allclose(part, full[held_out], rtol=1e-5, atol=1e-5)


def test_save_load_reproduces_embeddings(trained, tmp_path):
    model, mdata, _, _ = trained
    before = {k: model.get_latent_representation(modality=m, kind=k) for k in ("shared", "specific") for m in ("rna",)}
    model.save(tmp_path / "model", save_anndata=False)
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=mdata)
    for kind, value in before.items():
        np.testing.assert_array_equal(loaded.get_latent_representation(modality="rna", kind=kind), value)
    np.testing.assert_array_equal(loaded.module.input_scale.cpu().numpy(), model.module.input_scale.cpu().numpy())
    assert loaded.trained_stages_ == ["shared", "specific"]
    # the joint representation keeps its block weights
    assert loaded.joint_weights_ == model.joint_weights_
    assert loaded.explained_variance_.equals(model.explained_variance_)


def _small_fit(mdata, seed):
    model = isk.tl.fit(
        mdata.copy(), n_hidden=16, n_layers=2, max_epochs_shared=3, max_epochs_specific=3, seed=seed, **QUIET
    )
    return model.adata.obsm["X_indiseek"]


def test_seed_reproducibility(tiny):
    a, b, c = _small_fit(tiny, 7), _small_fit(tiny, 7), _small_fit(tiny, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_refuses_data_with_other_features(tiny):
    model = isk.tl.fit(tiny, n_hidden=8, n_layers=2, max_epochs_shared=1, max_epochs_specific=1, **QUIET)
    other = isk.datasets.simulated_cite(n_cells=50, n_genes=120, n_proteins=10, seed=0)
    isk.pp.prepare(other, n_comps=15)
    # with the reference's recipe, raw counts are aligned by name: the absent proteins are named in a warning
    with pytest.warns(UserWarning, match="lacks 15 of the reference's 25 features"):
        model.get_latent_representation(other, modality="prot")
    # without it (a model of custom inputs), new data must be in the training input space
    model.preprocessing_ = None
    with pytest.raises(ValueError, match="other features than the training data"):
        model.get_latent_representation(other, modality="prot")


def test_errors_before_training_and_for_bad_arguments(tiny):
    isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(tiny, n_hidden=8, n_layers=2)
    with pytest.raises(RuntimeError, match="train"):
        model.get_latent_representation(modality="rna")
    with pytest.raises(ValueError, match="kind"):
        model.get_latent_representation(modality="rna", kind="both")
    with pytest.raises(ValueError, match="Unknown modality"):
        model._modality_index("atac")
    with pytest.raises(ValueError, match="lam"):
        isk.IndiSeek(tiny, lam=-1.0)
    with pytest.raises(ValueError, match="Too few cells"):
        model.train(1, 1, train_indices=np.arange(10), **QUIET)
    with pytest.raises(KeyError, match="X_umap"):
        isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_umap")
    with pytest.raises(KeyError, match="'gex'"):
        isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "gex", "x2": "prot"})


def _n_dropout(nets) -> list[int]:
    return [sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.modules()) for net in nets]


def test_dropout_in_encoders_only_and_embeddings_are_deterministic(tiny, tmp_path):
    model = isk.tl.fit(
        tiny, n_hidden=16, n_layers=3, dropout=0.5, max_epochs_shared=2, max_epochs_specific=2, seed=0, **QUIET
    )
    module = model.module
    # two hidden layers per 3-layer encoder; none in the decoders or CLUB estimators
    assert _n_dropout(module.shared_encoders) == _n_dropout(module.specific_encoders) == [2, 2]
    assert _n_dropout(module.decoders) == _n_dropout(module.estimators) == [0, 0]
    assert tiny.uns["indiseek"]["params"]["dropout"] == 0.5
    first = model.get_latent_representation(modality="rna", kind="specific")
    np.testing.assert_array_equal(model.get_latent_representation(modality="rna", kind="specific"), first)
    x = torch.as_tensor(tiny["rna"].obsm["X_pca"], dtype=torch.float32)
    training = copy.deepcopy(module).train()  # a copy: training mode also updates batch-norm statistics
    with torch.no_grad():
        assert not torch.allclose(training.specific(x, 0), training.specific(x, 0))
    model.save(tmp_path / "model", save_anndata=False)
    loaded = isk.IndiSeek.load(str(tmp_path / "model"), adata=tiny)
    assert _n_dropout(loaded.module.specific_encoders) == [2, 2]
    np.testing.assert_array_equal(loaded.get_latent_representation(modality="rna", kind="specific"), first)
    with pytest.raises(ValueError, match="dropout"):
        isk.IndiSeek(tiny, dropout=1.0)


def test_dependence_without_dropout_reads_a_dropout_free_pass_in_training_only():
    torch.manual_seed(0)
    x = (torch.randn(64, 12), torch.randn(64, 5))
    tensors = {X1_KEY: x[0], X2_KEY: x[1]}
    for without in (False, True):
        module = IndiSeekModule(12, 5, n_hidden=16, n_layers=3, dropout=0.5, dependence_without_dropout=without)
        module.set_input_scale(*x)
        with torch.no_grad():
            c = (module.eval().shared(x[0], 0), module.shared(x[1], 1))  # stage 2 holds C fixed
        tensors.update(c1=c[0], c2=c[1])
        module.train()
        runs = [module.inference(x, c) for _ in range(2)]
        # the reconstruction's Z always has dropout; the CLUB term and the estimator's fit read a dropout-free pass
        # (the same on every call) only with the option
        assert not torch.allclose(runs[0]["specific"][0], runs[1]["specific"][0])
        assert torch.equal(runs[0]["dependence"][0][1], runs[1]["dependence"][0][1]) == without
        assert (float(module.estimator_loss(tensors)) == float(module.estimator_loss(tensors))) == without
        assert torch.equal(module.specific_for_dependence(x[0], 0), module.specific_for_dependence(x[0], 0)) == without
        assert all(encoder.training for encoder, _ in module.specific_encoders)  # left in training mode
    plain = IndiSeekModule(12, 5, n_hidden=16, n_layers=3, dropout=0.0, dependence_without_dropout=True).train()
    passes = []
    plain.specific_encoders[0][0].register_forward_hook(lambda *args: passes.append(1))
    plain.inference(x)
    assert len(passes) == 1  # without dropout there is no second pass to take


def test_input_dropout_masks_the_shared_encoders_inputs_in_training_only():
    module = IndiSeekModule(40, 30, n_hidden=8, n_layers=2, input_dropout=0.5)
    seen = []
    for net in (*module.shared_encoders, *(encoder for encoder, _ in module.specific_encoders)):
        net.register_forward_pre_hook(lambda net, args: seen.append(args[0].detach().clone()))
    x = torch.randn(500, 40) + 3.0  # no zeros in the input
    scaled = module.scaled(x, 0)
    module.train()
    module.shared(x, 0)
    masked = seen.pop()
    zero = masked == 0
    assert 0.45 < zero.float().mean() < 0.55  # about half of the features of every cell
    torch.testing.assert_close(masked[~zero], 2.0 * scaled[~zero])  # the others scaled by 1 / (1 - p)
    module.specific(x, 0)
    torch.testing.assert_close(seen.pop(), scaled)  # the specific encoders see whole inputs
    module.eval()
    module.shared(x, 0)
    torch.testing.assert_close(seen.pop(), scaled)
    with pytest.raises(ValueError, match="`input_dropout`"):
        IndiSeekModule(4, 3, input_dropout=1.0)


def test_second_stage_can_be_retrained_alone(tiny):
    model = isk.tl.fit(tiny, n_hidden=8, n_layers=2, lam=10.0, max_epochs_shared=2, max_epochs_specific=1, **QUIET)
    shared = model.get_latent_representation(modality="rna", kind="shared")
    model.train(0, 2, **QUIET)
    np.testing.assert_array_equal(model.get_latent_representation(modality="rna", kind="shared"), shared)
    assert len(model.history["specific_loss_train"]) == 2


def test_stage1_stops_early_at_its_best_epoch_without_printing(tiny, capfd):
    """Stage 1 stops once its validation loss has stalled for `early_stopping_patience` epochs and writes nothing to
    stdout (scvi-tools' own early stopping prints its reason there)."""
    model = isk.tl.fit(tiny, n_hidden=8, n_layers=2, lam=10.0, max_epochs_shared=1, max_epochs_specific=1, **QUIET)
    capfd.readouterr()
    model.train(300, 0, early_stopping_patience=3, lr=1e-2, **QUIET)
    validation = model.history["shared_loss_validation"].iloc[:, 0].to_numpy()
    assert len(validation) < 300
    assert len(validation) - 1 - validation.argmin() == 3  # stopped after 3 epochs without improvement
    assert "Monitored metric" not in capfd.readouterr().out


def test_lightning_start_up_messages_appear_once_per_train_call(tiny):
    """`lam="auto"` runs seven trainers in one `train` call: the device lines and tips appear once, and none of the
    per-trainer "`Trainer.fit` stopped" lines (their epoch counts are those of one step of the path)."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    parents = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities")]
    levels = [parent.level for parent in parents]
    for parent in parents:
        parent.setLevel(logging.INFO)
        parent.addHandler(handler)
    try:
        model = isk.tl.fit(tiny, n_hidden=8, n_layers=2, max_epochs_shared=2, max_epochs_specific=10, **QUIET)
    finally:
        for parent, level in zip(parents, levels, strict=True):
            parent.removeHandler(handler)
            parent.setLevel(level)
    assert len(model.lambda_path_) == 5  # five steps of the path and the chosen one trained on: seven trainers
    assert sum(message.startswith("GPU available") for message in records) == 1
    assert not [message for message in records if message.startswith("`Trainer.fit` stopped")]
    assert len(records) == len(set(records))


def test_training_hides_the_libraries_deprecation_warnings_about_each_other(tiny):
    """A fit shows the user no FutureWarning that Lightning raises by using torch's deprecated ``LeafSpec``; the
    user's own warnings filters still apply outside training."""
    mine = "`isinstance(treespec, LeafSpec)` is deprecated (raised by the user)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        isk.tl.fit(tiny, n_hidden=8, n_layers=2, lam=10.0, max_epochs_shared=1, max_epochs_specific=1, **QUIET)
        warnings.warn(mine, FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught if "LeafSpec" in str(w.message)] == [mine]


def test_module_loss_and_sample_follow_the_scvi_api(tiny):
    isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(tiny, n_hidden=8, n_layers=2, lam=10.0)
    module = model.module
    tensors = {"x1": torch.randn(16, 15), "x2": torch.randn(16, 25)}
    module.eval()
    _, generative, loss = module(tensors)
    assert generative["reconstruction"][0].shape == (16, 15)
    terms = specific_terms(module, tensors)
    torch.testing.assert_close(loss.loss, terms["loss"])
    torch.testing.assert_close(
        terms["loss"], terms["club_rna"] + terms["club_prot"] + 5.0 * (terms["recon_rna"] + terms["recon_prot"])
    )
    rec1, rec2 = module.sample(tensors)
    assert rec2.shape == (16, 25)


@pytest.mark.parametrize(
    ("objective", "dependence", "completeness"),
    [("indiseek_noswitch", "club", "recon"), ("factorcl", "club", "nce"), ("infodisen", "orthogonality", "nce")],
)
def test_every_objective_composes_its_terms_and_trains(tiny, objective, dependence, completeness):
    isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(tiny, n_hidden=8, n_layers=2, lam=4.0, objective=objective)
    module = model.module
    x1, x2 = torch.randn(16, 15), torch.randn(16, 25)
    terms = specific_terms(module, {"x1": x1, "x2": x2})
    names = {f"{term}_{m}" for term in (dependence, completeness) for m in ("rna", "prot")}
    assert set(terms) == names | {"loss"}
    expected = sum(terms[f"{dependence}_{m}"] + 2.0 * terms[f"{completeness}_{m}"] for m in ("rna", "prot"))
    torch.testing.assert_close(terms["loss"], expected)
    # the dependence term uses the objective's shared features: changing the other modality's C changes
    # InfoDisen's completeness term but not its dependence term
    c1, c2 = module.shared(x1, 0).detach(), module.shared(x2, 1).detach()
    module.eval()
    a = specific_terms(module, {"x1": x1, "c1": c1, "c2": c2})
    b = specific_terms(module, {"x1": x1, "c1": c1, "c2": torch.randn_like(c2)})
    assert torch.equal(a[f"{dependence}_rna"], b[f"{dependence}_rna"])
    assert torch.equal(a[f"{completeness}_rna"], b[f"{completeness}_rna"]) == (objective != "infodisen")
    model.train(2, 3, batch_size=32, **QUIET)
    assert f"{dependence}_rna_train" in model.history and f"{completeness}_prot_validation" in model.history
    assert ("estimator_nll_train" in model.history) == (dependence == "club")
    assert model.get_latent_representation(modality="prot").shape == (tiny.n_obs, 50)


def test_moments_estimator_is_refitted_and_has_no_optimizer(tiny):
    isk.IndiSeek.setup_mudata(tiny, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(tiny, n_hidden=8, n_layers=2, estimator="moments")
    assert not model.module.trains_estimator and not list(model.module.estimator_parameters())
    model.train(1, 2, batch_size=32, **QUIET)
    coef = model.module.estimators[0].coef
    assert coef.abs().sum() > 0  # refitted from its initial zeros
    assert "estimator_nll_train" not in model.history


def test_clip_only_baseline_trains_stage_one_and_writes_shared_blocks(tiny):
    model = isk.tl.fit(tiny, objective="clip", n_hidden=8, n_layers=2, max_epochs_shared=2, **QUIET)
    assert model.trained_stages_ == ["shared"] and model.is_trained_
    assert not list(model.module.specific_parameters())
    assert "X_indiseek_specific_rna" not in tiny.obsm
    np.testing.assert_array_equal(
        tiny.obsm["X_indiseek"], np.c_[tiny.obsm["X_indiseek_shared_rna"], tiny.obsm["X_indiseek_shared_prot"]]
    )
    with pytest.raises(ValueError, match="CLIP-only"):
        model.get_latent_representation(modality="rna", kind="specific")
