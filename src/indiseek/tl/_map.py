"""Applying a trained model to new cells: their representations, the modality they lack, and their labels."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from sklearn.neighbors import KNeighborsClassifier

from indiseek._constants import JOINT_KEY, shared_key, specific_key
from indiseek.model import IndiSeek

from ._labels import labels_of


def _present_modalities(model: IndiSeek, data: MuData | AnnData, modality: str | None) -> list[str]:
    """The model's modalities that ``data`` holds, checked to be paired with its cells."""
    names = list(model.modality_names)
    if isinstance(data, AnnData) and not isinstance(data, MuData):
        if modality not in names:
            raise ValueError(f"An AnnData query is one modality: name it with `modality=`, one of {names}.")
        return [modality]
    present = [m for m in names if m in data.mod]
    if not present:
        raise KeyError(f"The query has none of the model's modalities {names}; it has {list(data.mod)}.")
    for m in present:
        if not data.mod[m].obs_names.equals(data.obs_names):
            raise ValueError(
                f"Modality {m!r} of the query does not hold the MuData's cells in its order; keep the cells that "
                "all modalities share with `muon.pp.intersect_obs(mdata)` first."
            )
    return present


def write_representations(
    model: IndiSeek, mdata: MuData | AnnData | None = None, *, modality: str | None = None
) -> None:
    """Write a trained model's representations of ``mdata``'s cells to ``mdata.obsm``.

    Parameters
    ----------
    model
        A trained :class:`~indiseek.IndiSeek`.
    mdata
        Cells to embed (``None``: the model's training data): a MuData with both of the model's modalities or one
        of them, or an AnnData of one modality (named by ``modality``). If the model was trained on the inputs of
        :func:`indiseek.pp.prepare`, raw counts are prepared with the reference's own recipe, as
        :meth:`IndiSeek.get_latent_representation` describes; otherwise the inputs must be in the training data's
        input space.
    modality
        Which of the model's modalities an AnnData holds.

    Returns
    -------
    ``None``; writes ``obsm["X_indiseek_shared_<mod>"]`` and ``obsm["X_indiseek_specific_<mod>"]`` for each modality
    present, and, when both are, ``obsm["X_indiseek"]`` (the four blocks weighted as :func:`fit` describes). For
    the CLIP-only baseline (``objective="clip"``) there are no specific keys and ``obsm["X_indiseek"]`` holds the
    two shared blocks. Nothing is written if any representation fails.

    Examples
    --------
    >>> import indiseek as isk
    >>> train = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(train, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> query = isk.datasets.simulated_cite(n_cells=50, n_genes=200, seed=1)  # raw counts of other cells
    >>> isk.tl.write_representations(model, query)
    >>> query.obsm["X_indiseek_specific_rna"].shape
    (50, 50)
    >>> rna_only = query["rna"].copy()
    >>> isk.tl.write_representations(model, rna_only, modality="rna")
    >>> sorted(rna_only.obsm)
    ['X_indiseek_shared_rna', 'X_indiseek_specific_rna']
    """
    mdata = model.adata if mdata is None else mdata
    present = _present_modalities(model, mdata, modality)
    kinds = (
        (("shared", shared_key), ("specific", specific_key)) if model.module.has_specific else (("shared", shared_key),)
    )
    parts = {}
    for kind, key_of in kinds:
        for m in present:
            parts[key_of(m)] = model.get_latent_representation(mdata, modality=m, kind=kind)
    for key, value in parts.items():
        mdata.obsm[key] = value
    if len(present) < 2:
        return
    # the model's block weights; models saved without them get equal mean squared norms (shared features have norm 1,
    # standardised specific ones E||z||^2 = n_specific)
    fallback = [1.0, 1.0, model.module.n_specific**-0.5, model.module.n_specific**-0.5]
    weights = (getattr(model, "joint_weights_", None) or fallback)[: len(parts)]
    mdata.obsm[JOINT_KEY] = np.concatenate([w * v for w, v in zip(weights, parts.values(), strict=True)], axis=1)


def impute(
    model: IndiSeek,
    mdata: MuData,
    *,
    source: str = "rna",
    method: Literal["neighbors", "marginal"] = "neighbors",
    n_neighbors: int = 15,
    n_samples: int = 100,
    key_added: str | None = None,
    seed: int = 0,
) -> None:
    """Add the modality that ``mdata``'s cells lack, predicted from ``source``, as a new modality of ``mdata``.

    Parameters
    ----------
    model
        A trained :class:`~indiseek.IndiSeek`.
    mdata
        MuData with the ``source`` modality (raw counts, or the model's inputs).
    source
        The measured modality; the model's other modality is imputed (:meth:`IndiSeek.impute` states how).
    method
        ``"neighbors"`` (the reconstructions of the nearest training cells in the source's shared space) or
        ``"marginal"`` (the decoder averaged over drawn specific features), as in :meth:`IndiSeek.impute`.
    n_neighbors
        Training cells averaged per cell (``method="neighbors"``).
    n_samples
        Specific features drawn per cell (``method="marginal"``).
    key_added
        Name of the new modality (``None``: ``"<target>_imputed"``). An existing modality of that name is refused.
    seed
        Seed of the draws (``method="marginal"``).

    Returns
    -------
    ``None``; adds ``mdata.mod[key_added]``: the imputed values in ``.X``, their spread in ``.layers["std"]``, so
    that e.g. ``muon.pl.embedding(mdata, basis="rna:X_umap", color="prot_imputed:CD4")`` draws them.

    Examples
    --------
    >>> import indiseek as isk
    >>> import mudata as md
    >>> train = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(train, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> query = md.MuData({"rna": isk.datasets.simulated_cite(n_cells=50, n_genes=200, seed=1)["rna"].copy()})
    >>> isk.tl.impute(model, query, source="rna")
    >>> query["prot_imputed"].shape
    (50, 25)
    """
    if not isinstance(mdata, MuData):
        raise TypeError(f"`tl.impute` adds a modality to a MuData; for an {type(mdata).__name__} use `model.impute`.")
    target = [m for m in model.modality_names if m != source]
    if source not in model.modality_names:
        raise ValueError(
            f"`source` must be one of the model's modalities {list(model.modality_names)}, got {source!r}."
        )
    key_added = f"{target[0]}_imputed" if key_added is None else key_added
    if key_added in mdata.mod:
        raise ValueError(f"The MuData already has a modality {key_added!r}; choose another `key_added`.")
    _present_modalities(model, mdata, None)
    imputed = model.impute(mdata, source=source, method=method, n_neighbors=n_neighbors, n_samples=n_samples, seed=seed)
    _add_modality(mdata, key_added, imputed)


def _add_modality(mdata: MuData, key: str, adata: AnnData) -> None:
    """Add a modality of the same cells to ``mdata``.

    ``MuData.update`` refuses a new modality whose feature names overlap the existing ones (a CD4 gene and a CD4
    protein), so overlapping names enter renamed and are put back afterwards.
    """
    names, taken = adata.var_names.copy(), set(mdata.var_names)
    adata.var_names = [f"{n}__indiseek_new" if n in taken else n for n in names]
    mdata.mod[key] = adata
    mdata.update()
    mdata.mod[key].var_names = names
    mdata.update()


def transfer_labels(
    reference: MuData | AnnData,
    query: MuData | AnnData,
    key: str,
    *,
    use_rep: str = "X_indiseek_shared_rna",
    n_neighbors: int = 15,
    key_added: str | None = None,
) -> None:
    """Annotate query cells with the labels of their nearest reference cells in a representation.

    A scikit-learn k-nearest-neighbour classifier is fitted on the reference cells' ``obsm[use_rep]`` and labels
    ``key``, and predicts each query cell's label from its ``obsm[use_rep]``.

    Parameters
    ----------
    reference
        Labelled cells with ``obsm[use_rep]`` (e.g. the training MuData after :func:`fit`).
    query
        Cells with ``obsm[use_rep]`` from the same model (:func:`write_representations`).
    key
        Column of ``reference.obs`` with the labels; every reference cell must have one.
    use_rep
        The representation to compare cells in. ``"X_indiseek_shared_rna"`` serves a query with RNA only.
    n_neighbors
        Neighbours per query cell.
    key_added
        Column of ``query.obs`` for the predictions (``None``: ``f"{key}_predicted"``).

    Returns
    -------
    ``None``; writes ``query.obs[key_added]`` (categorical) and ``query.obs[key_added + "_confidence"]``, the share
    of the neighbours that carry the predicted label.

    Examples
    --------
    >>> import indiseek as isk
    >>> train = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(train, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> query = isk.datasets.simulated_cite(n_cells=50, n_genes=200, seed=1)
    >>> isk.tl.write_representations(model, query)
    >>> isk.tl.transfer_labels(train, query, "cell_type")
    >>> sorted(c for c in query.obs.columns if c.startswith("cell_type_predicted"))
    ['cell_type_predicted', 'cell_type_predicted_confidence']
    """
    for name, data in (("reference", reference), ("query", query)):
        if use_rep not in data.obsm:
            raise KeyError(
                f"`obsm[{use_rep!r}]` is not in the {name}; it has {list(data.obsm)}. Write the model's "
                "representations with `indiseek.tl.write_representations(model, data)` first."
            )
    labels = labels_of(reference, key)
    ref_rep, query_rep = np.asarray(reference.obsm[use_rep]), np.asarray(query.obsm[use_rep])
    if ref_rep.shape[1] != query_rep.shape[1]:
        raise ValueError(
            f"`obsm[{use_rep!r}]` has {ref_rep.shape[1]} columns in the reference and {query_rep.shape[1]} in the "
            "query: write both with the same model."
        )
    if not isinstance(n_neighbors, int | np.integer) or not 1 <= n_neighbors <= len(labels):
        raise ValueError(f"`n_neighbors` must be between 1 and the {len(labels)} reference cells, got {n_neighbors!r}.")
    classifier = KNeighborsClassifier(n_neighbors).fit(ref_rep, labels.to_numpy())
    proba = classifier.predict_proba(query_rep)
    predicted = classifier.classes_[proba.argmax(axis=1)]
    key_added = f"{key}_predicted" if key_added is None else key_added
    query.obs[key_added] = pd.Categorical(predicted, categories=classifier.classes_)
    query.obs[f"{key_added}_confidence"] = proba.max(axis=1)
