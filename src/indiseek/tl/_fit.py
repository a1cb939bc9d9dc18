"""One-call training of IndiSeek on a MuData."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scvi
from mudata import MuData

from indiseek._constants import PREPARE_KEY, RNA_NAMES, UNS_KEY
from indiseek._inputs import guess_modalities, input_spec, parse_input, prepared_input
from indiseek._rollback import unchanged_on_error
from indiseek._threads import torch_threads
from indiseek._validation import check_mudata, check_train_indices, count_problem
from indiseek.model import IndiSeek
from indiseek.pp import prepare as _prepare

from ._map import write_representations


def _input_of(mdata: MuData, modality: str, inputs: dict[str, str] | None) -> tuple[str | None, str | None]:
    """(layer, obsm key) of a modality: from ``inputs``, from :func:`~indiseek.pp.prepare`'s record, else ``.X``."""
    spec = (inputs or {}).get(modality) or prepared_input(mdata, modality) or "X"
    return parse_input(spec, modality)


def _modalities(mdata: MuData, modalities: Sequence[str] | None) -> tuple[str, str]:
    """The two modalities to fit: as given, else RNA and protein by name, else the MuData's only two."""
    names = list(mdata.mod)
    if modalities is None:
        guessed = guess_modalities(mdata)
        if None not in guessed:
            modalities = guessed
        elif len(names) == 2:
            modalities = names
        else:
            raise ValueError(
                f"The MuData has {len(names)} modalities {names}; pass the two to use as `modalities=(first, second)`."
            )
    modalities = tuple(modalities)
    if len(modalities) != 2 or modalities[0] == modalities[1]:
        raise ValueError(f"`modalities` must name two different modalities, got {modalities}.")
    return modalities


def _split_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """``kwargs`` split into those of :class:`~indiseek.IndiSeek` and those of :meth:`IndiSeek.train`."""
    model_keys = set(inspect.signature(IndiSeek.__init__).parameters) - {"self", "mdata"}
    return {k: v for k, v in kwargs.items() if k in model_keys}, {
        k: v for k, v in kwargs.items() if k not in model_keys
    }


def fit(
    mdata: MuData,
    *,
    modalities: Sequence[str] | None = None,
    inputs: dict[str, str] | None = None,
    prepare: bool | Literal["auto"] = "auto",
    n_comps: int = 200,
    batch_key: str | None = None,
    train_indices: np.ndarray | None = None,
    seed: int = 0,
    n_threads: int | None = None,
    resume_from: str | Path | None = None,
    copy: bool = False,
    **kwargs,
) -> IndiSeek:
    r"""Set up, train and apply IndiSeek; write the shared and specific representations to ``.obsm``.

    Parameters
    ----------
    mdata
        MuData with two paired modalities.
    modalities
        The two modality names, in the order ``(x1, x2)`` (``None``: the RNA and protein modalities by name, e.g.
        ``("rna", "prot")`` or ``("rna", "adt")``, else the two modalities of ``mdata``).
    inputs
        Per modality, the matrix to read: ``"X"``, ``"layers/<name>"`` or ``"obsm/<key>"``. Unspecified modalities
        use what :func:`indiseek.pp.prepare` wrote (RNA PCs, protein CLR), else ``.X``.
    prepare
        Run :func:`indiseek.pp.prepare` first: ``"auto"`` does so when ``mdata`` has not been prepared, no
        ``inputs`` are given, the first modality is called ``"rna"`` (or ``"gex"``) and its ``.X`` holds counts
        (non-negative integers). Otherwise each modality is read as it is (e.g. arrays from
        :func:`indiseek.data.from_arrays`).
    n_comps
        Principal components when preparing.
    batch_key
        Column of ``mdata.obs`` with each cell's batch (sample, donor, run), a covariate whose information the
        representations are trained to drop (:meth:`IndiSeek.setup_mudata`; how it is removed:
        :class:`~indiseek.model.IndiSeekModule`). ``None``: no batch covariate.
    train_indices
        Positions of the cells to train on (``None``: all); every cell is embedded.
    seed
        Seed of the weights, the split and the batches (also sets ``scvi.settings.seed``).
    n_threads
        Torch threads while training (``None``: torch's current count, e.g. from ``OMP_NUM_THREADS``). The count in
        force before the call is restored afterwards, also after the preprocessing's numba kernels reset it.
    resume_from
        Folder of a model that an earlier call saved after a stage (``checkpoint_dir=``, or ``indiseek fit
        --save-model``): it is loaded, with its parameters, and only the stages it has not finished are trained.
    copy
        Work on a copy of ``mdata``; the input is left untouched and the copy is ``model.adata``.
    **kwargs
        Options of the model (:class:`~indiseek.IndiSeek`: ``lam``, ``objective``, ``n_layers``, ``dropout``...)
        and of its training (:meth:`IndiSeek.train`: ``max_epochs_shared``, ``lr``, ``batch_size``,
        ``enable_progress_bar``, ``checkpoint_dir`` to save the model after each stage...). What each setting does
        on real and simulated data is on the benchmarks page (:doc:`/benchmarks`).

    Returns
    -------
    IndiSeek
        The trained model. Written to ``mdata`` (or its copy):

        * ``obsm["X_indiseek_shared_<mod>"]``, ``obsm["X_indiseek_specific_<mod>"]`` for both modalities;
        * ``obsm["X_indiseek"]``: the concatenation (shared x1, shared x2, specific x1, specific x2), each block
          scaled to a total variance of 1 on the training cells and weighted by the square root of the share of its
          modality's variance that it explains on the validation cells (``model.explained_variance_``; the weights
          are ``model.joint_weights_``), so a block that reconstructs little of its modality weighs little;
        * ``uns["indiseek"]``: the modalities, inputs, the model's parameters, the :math:`\lambda` it trained with
          (``"lam"``) and, for ``lam="auto"``, the path it was chosen on (``"lambda_path"``: ``lam``,
          ``reconstruction``, ``leakage``, ``chosen``; :func:`indiseek.pl.lambda_path` draws it) and the shares of
          each modality's variance that the representations explain (``"explained_variance"``: per modality,
          ``total``, ``shared``, ``specific``, as in ``model.explained_variance_``);
        * with ``batch_key``: ``uns["indiseek"]["batch_key"]`` and scvi-tools' batch codes in
          ``obs["_scvi_batch"]``;
        * the keys of :func:`indiseek.pp.prepare` when it runs, and scvi-tools' registration keys in ``.uns``.

    A call that raises leaves ``mdata`` as it was: the keys written before the error are taken back.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> mdata.obsm["X_indiseek"].shape
    (300, 200)
    """
    if not isinstance(mdata, MuData):
        raise TypeError(f"Expected a MuData object, got {type(mdata).__name__}.")
    mdata = mdata.copy() if copy else mdata
    modalities = _modalities(mdata, modalities)
    check_mudata(mdata, modalities)
    check_train_indices(mdata.n_obs, train_indices)
    with torch_threads(n_threads), unchanged_on_error(mdata):
        if _should_prepare(mdata, modalities, inputs, prepare):
            _prepare(mdata, rna=modalities[0], prot=modalities[1], n_comps=n_comps, seed=seed)
        sources = [_input_of(mdata, m, inputs) for m in modalities]
        scvi.settings.seed = seed
        IndiSeek.setup_mudata(
            mdata,
            modalities={"x1": modalities[0], "x2": modalities[1]},
            x1_layer=sources[0][0],
            x1_obsm_key=sources[0][1],
            x2_layer=sources[1][0],
            x2_obsm_key=sources[1][1],
            batch_key=batch_key,
        )
        model = _trained_model(mdata, resume_from, train_indices=train_indices, seed=seed, **kwargs)
        write_representations(model, mdata)
        mdata.uns[UNS_KEY] = {
            "modalities": list(modalities),
            "inputs": {m: input_spec(*source) for m, source in zip(modalities, sources, strict=True)},
            "params": {**model.init_params_["non_kwargs"], "seed": seed},
            "n_train_cells": int(len(model.train_indices)),
            "lam": float(model.module.lam),
        }
        if batch_key is not None:
            mdata.uns[UNS_KEY]["batch_key"] = batch_key
        if getattr(model, "lambda_path_", None) is not None:
            mdata.uns[UNS_KEY]["lambda_path"] = {k: v.to_numpy() for k, v in model.lambda_path_.items()}
        if getattr(model, "explained_variance_", None) is not None:
            mdata.uns[UNS_KEY]["explained_variance"] = model.explained_variance_.T.to_dict()
    return model


def _should_prepare(mdata: MuData, modalities, inputs, prepare: bool | str) -> bool:
    """Whether to run the paper's preprocessing; warns when ``"auto"`` skips it for an RNA ``.X`` without counts."""
    if prepare != "auto":
        return bool(prepare)
    rna = mdata.mod[modalities[0]]
    if PREPARE_KEY in mdata.uns or inputs or modalities[0] not in RNA_NAMES:
        return False
    problem = count_problem(rna.X)
    if problem is None and rna.X.size:
        return True
    warnings.warn(
        f"The {modalities[0]!r} modality's .X does not hold raw counts ({problem or 'empty'} values), so tl.fit does "
        f"not run the paper's preprocessing and trains on .X as it is ({rna.n_vars} features). For the paper's "
        "preprocessing (log-normalised counts -> 200 PCs; protein CLR), keep the raw counts in a layer and run "
        '`isk.pp.prepare(mdata, counts_layer="counts")` first, or pass `inputs=` to read another matrix.',
        UserWarning,
        stacklevel=3,
    )
    return False


def _trained_model(mdata: MuData, resume_from, *, train_indices, seed: int, **kwargs) -> IndiSeek:
    """A new model trained on ``mdata``, or the one saved in ``resume_from`` with its unfinished stages trained."""
    model_kwargs, train_kwargs = _split_kwargs(kwargs)
    if resume_from is None:
        model = IndiSeek(mdata, **model_kwargs)
    else:
        model = IndiSeek.load(str(resume_from), adata=mdata)
        stages = ("shared", "specific") if model.module.has_specific else ("shared",)
        if all(stage in model.trained_stages_ for stage in stages):
            return model
        if "shared" in model.trained_stages_:
            train_kwargs["max_epochs_shared"] = 0
    model.train(train_indices=train_indices, seed=seed, **train_kwargs)
    return model
