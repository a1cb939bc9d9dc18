"""Data-parallel training through Lightning: two CPU processes."""

from __future__ import annotations

import numpy as np

import indiseek as isk


def test_ddp_on_two_cpu_processes_trains_a_model_that_saves_loads_and_embeds(tmp_path):
    mdata = isk.datasets.simulated_cite(n_cells=400, n_genes=100, seed=0)
    isk.pp.prepare(mdata, n_comps=10)
    isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    model = isk.IndiSeek(mdata, n_hidden=16, n_layers=2, lam=10.0)
    untrained = isk.IndiSeek(mdata, n_hidden=16, n_layers=2, lam=10.0)
    untrained.module.load_state_dict(model.module.state_dict())
    model.train(3, 2, accelerator="cpu", devices=2, strategy="ddp_fork", seed=0, enable_progress_bar=False)
    assert model.is_trained_ and model.trained_stages_ == ["shared", "specific"]
    # both stages trained in the worker processes, and their weights came back to this process
    for name in ("shared_encoders", "specific_encoders"):
        trained, initial = getattr(model.module, name)[0][0], getattr(untrained.module, name)[0][0]
        trained = trained if hasattr(trained, "weight") else trained[0]
        initial = initial if hasattr(initial, "weight") else initial[0]
        assert not np.allclose(trained.weight.detach(), initial.weight.detach())
    assert len(model.history["shared_loss_train"]) == 3 and len(model.history["specific_loss_train"]) == 2
    z = model.get_latent_representation(modality="rna")
    assert z.shape == (400, 50) and np.isfinite(z).all()
    model.save(tmp_path / "model")
    loaded = isk.IndiSeek.load(tmp_path / "model", adata=mdata)
    np.testing.assert_allclose(loaded.get_latent_representation(modality="rna"), z, atol=1e-6)
