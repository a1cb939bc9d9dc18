"""What identifies the input space a model was trained in, and the check that new data shares it."""

from __future__ import annotations

import numpy as np
from anndata import AnnData


def input_fingerprint(mod: AnnData, obsm_key: str | None) -> dict:
    """Feature names; for ``.obsm`` inputs also the first PCA loadings that scanpy stores in ``varm["PCs"]``."""
    out = {"var_names": list(map(str, mod.var_names))}
    if obsm_key is None:
        return out
    loadings = mod.varm["PCs"] if obsm_key == "X_pca" and "PCs" in mod.varm else None
    return {
        "obsm_key": obsm_key,
        **out,
        "loadings": None if loadings is None else np.asarray(loadings[:, :3], dtype=np.float64).copy(),
    }


def check_fingerprint(trained: dict, mod: AnnData, name: str) -> None:
    """Refuse modality ``name`` of new data (``mod``) if it is not in the input space of ``trained``."""
    names = list(map(str, mod.var_names))
    if "obsm_key" not in trained:
        if names != trained["var_names"]:
            same_set = set(names) == set(trained["var_names"])
            raise ValueError(
                f"Modality {name!r} has {'its features in another order than' if same_set else 'other features than'}"
                f" the training data ({len(names)} here, {len(trained['var_names'])} in training). Select them in "
                f"the training order: `mdata.mod[{name!r}] = mdata[{name!r}][:, model.input_features_[{name!r}]"
                '["var_names"]].copy()`, then `mdata.update()`.'
            )
        return
    loadings = trained["loadings"]
    if loadings is None or trained["obsm_key"] != "X_pca" or "PCs" not in mod.varm:
        return
    new = np.asarray(mod.varm["PCs"][:, : loadings.shape[1]], dtype=np.float64)
    if names != trained["var_names"] or new.shape != loadings.shape or not np.allclose(new, loadings, atol=1e-5):
        raise ValueError(
            f"Modality {name!r}: `.obsm['X_pca']` of this MuData comes from another PCA than the training "
            "data's, so its components mean something else. Prepare the new cells together with the training "
            "cells (one `indiseek.pp.prepare` call) and train on a subset with `train_indices=`."
        )
