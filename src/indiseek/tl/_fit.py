"""One-call training of IndiSeek on a MuData."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scvi
from mudata import MuData

from indiseek._constants import JOINT_KEY, UNS_KEY, shared_key, specific_key
from indiseek._validation import check_mudata, holds_counts
from indiseek.model import IndiSeek
from indiseek.pp import prepare as _prepare
from indiseek.pp._prepare import PREPARE_KEY


def _input_of(mdata: MuData, modality: str, inputs: dict[str, str] | None) -> tuple[str | None, str | None]:
    """(layer, obsm key) of a modality: from ``inputs``, from :func:`~indiseek.pp.prepare`'s record, else ``.X``."""
    spec = (inputs or {}).get(modality)
    if spec is None and PREPARE_KEY in mdata.uns:
        record = mdata.uns[PREPARE_KEY]
        spec = {record["rna"]: record["rna_input"], record["prot"]: record["prot_input"]}.get(modality)
    if spec is None or spec == "X":
        return None, None
    where, _, key = spec.partition("/")
    if where not in ("layers", "obsm") or not key:
        raise ValueError(f'Input {spec!r} of modality {modality!r} must be "X", "layers/<name>" or "obsm/<key>".')
    return (key, None) if where == "layers" else (None, key)


def fit(
    mdata: MuData,
    *,
    modalities: Sequence[str] | None = None,
    inputs: dict[str, str] | None = None,
    prepare: bool | Literal["auto"] = "auto",
    n_comps: int = 200,
    lam: float = 10.0,
    objective: Literal["indiseek", "indiseek_noswitch", "factorcl", "infodisen", "clip"] = "indiseek",
    estimator: Literal["mlp", "moments"] = "mlp",
    encoder: Literal["mlp", "transformer"] = "mlp",
    n_shared: int = 50,
    n_specific: int = 50,
    n_hidden: int = 50,
    n_layers: int = 5,
    n_estimator_layers: int = 2,
    dropout: float = 0.0,
    max_epochs_shared: int | None = None,
    max_epochs_specific: int | None = None,
    train_indices: np.ndarray | None = None,
    seed: int = 0,
    copy: bool = False,
    **train_kwargs,
) -> IndiSeek:
    r"""Set up, train and apply IndiSeek; write the shared and specific representations to ``.obsm``.

    Parameters
    ----------
    mdata
        MuData with two paired modalities.
    modalities
        The two modality names, in the order ``(x1, x2)`` (``None``: ``("rna", "prot")`` or ``("rna", "adt")`` if
        present, else the two modalities of ``mdata``).
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
    lam
        :math:`\lambda`, the reconstruction weight of eq. (2).
    objective
        Stage-2 objective (``"indiseek"``, ``"indiseek_noswitch"``, ``"factorcl"``, ``"infodisen"``; ``"clip"``
        trains stage 1 only and writes no specific representations). See :class:`~indiseek.IndiSeek`.
    estimator
        CLUB estimator (``"mlp"`` or ``"moments"``, see :class:`~indiseek.IndiSeek`).
    encoder
        Encoder of sequence modalities (from :func:`indiseek.data.from_arrays`): ``"mlp"`` or ``"transformer"``.
    n_shared, n_specific, n_hidden, n_layers, n_estimator_layers
        Network sizes (see :class:`~indiseek.IndiSeek`).
    dropout
        Dropout rate in the encoders' hidden layers while they train (0: the paper's networks). ``0.2`` clustered
        cell types markedly better on both real CITE-seq files of the benchmarks (see :class:`~indiseek.IndiSeek`).
    max_epochs_shared, max_epochs_specific
        Epoch caps of the two stages (``None``: the model's default).
    train_indices
        Positions of the cells to train on (``None``: all); every cell is embedded.
    seed
        Seed of the weights, the split and the batches (also sets ``scvi.settings.seed``).
    copy
        Work on a copy of ``mdata``; the input is left untouched and the copy is ``model.adata``.
    **train_kwargs
        Passed to :meth:`IndiSeek.train` (``lr``, ``batch_size``, ``validation_size``, ``enable_progress_bar``...).

    Returns
    -------
    The trained model. Written to ``mdata`` (or its copy):

    * ``obsm["X_indiseek_shared_<mod>"]``, ``obsm["X_indiseek_specific_<mod>"]`` for both modalities;
    * ``obsm["X_indiseek"]``: the concatenation (shared x1, shared x2, specific x1, specific x2) with equal weight per
      block: the shared blocks are unit vectors and the specific blocks are divided by ``sqrt(n_specific)``, so each
      block has an expected squared norm of 1 and none dominates distances (unweighted, the four standardised
      specific coordinates per dimension would outweigh the shared ones about 100-fold);
    * ``uns["indiseek"]``: the modalities, inputs and parameters;
    * the keys of :func:`indiseek.pp.prepare` when it runs, and scvi-tools' registration keys in ``.uns``.

    Notes
    -----
    The defaults are the paper's networks (5 layers of width 50, :math:`\lambda = 10`). On simulated data they leave
    far less of the shared factors in the specific representations than smaller networks with a larger
    :math:`\lambda` do. Trained on a few hundred cells, though, they lose much of each modality's cell-type
    structure. For such samples, when :math:`\theta` and clustering are the goal, ``n_layers=2, lam=3e3,
    dropout=0.2`` is the measured setting. On 300 training cells of the bone-marrow sample it put :math:`\theta`'s
    rank agreement with the WNN weights level with :math:`\theta` on the raw representations, and it clustered cell
    types better than totalVI. On simulated data of that size, its specific representations keep most of the shared
    factors. ``docs/benchmarks.md`` ("The small-sample setting") has the numbers.

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
    names = list(mdata.mod)
    if modalities is None:
        for pair in (("rna", "prot"), ("rna", "adt")):
            if all(m in names for m in pair):
                modalities = pair
                break
        else:
            if len(names) != 2:
                raise ValueError(
                    f"The MuData has {len(names)} modalities {names}; pass the two to use as "
                    "`modalities=(first, second)`."
                )
            modalities = tuple(names)
    modalities = tuple(modalities)
    if len(modalities) != 2 or modalities[0] == modalities[1]:
        raise ValueError(f"`modalities` must name two different modalities, got {modalities}.")
    check_mudata(mdata, modalities)
    if prepare == "auto":
        prepare = (
            PREPARE_KEY not in mdata.uns
            and not inputs
            and modalities[0] in ("rna", "gex")
            and holds_counts(mdata.mod[modalities[0]].X)
        )
    if prepare:
        _prepare(mdata, rna=modalities[0], prot=modalities[1], n_comps=n_comps, seed=seed)

    (l1, o1), (l2, o2) = (_input_of(mdata, m, inputs) for m in modalities)
    scvi.settings.seed = seed
    IndiSeek.setup_mudata(
        mdata,
        modalities={"x1": modalities[0], "x2": modalities[1]},
        x1_layer=l1,
        x1_obsm_key=o1,
        x2_layer=l2,
        x2_obsm_key=o2,
    )
    params = {
        "lam": lam,
        "objective": objective,
        "estimator": estimator,
        "encoder": encoder,
        "n_shared": n_shared,
        "n_specific": n_specific,
        "n_hidden": n_hidden,
        "n_layers": n_layers,
        "n_estimator_layers": n_estimator_layers,
        "dropout": dropout,
    }
    model = IndiSeek(mdata, **params)
    model.train(max_epochs_shared, max_epochs_specific, train_indices=train_indices, seed=seed, **train_kwargs)
    write_representations(model, mdata)
    mdata.uns[UNS_KEY] = {
        "modalities": list(modalities),
        "inputs": {
            m: ("obsm/" + o if o else "layers/" + l if l else "X")
            for m, l, o in zip(modalities, (l1, l2), (o1, o2), strict=True)
        },
        "params": {**params, "seed": seed},
        "n_train_cells": int(len(model.train_indices)),
    }
    return model


def write_representations(model: IndiSeek, mdata: MuData | None = None) -> None:
    """Write a trained model's representations of ``mdata``'s cells to ``mdata.obsm``.

    Parameters
    ----------
    model
        A trained :class:`~indiseek.IndiSeek`.
    mdata
        MuData with the training data's modalities and features (``None``: the model's training data). Use this
        to embed held-out cells.

    Returns
    -------
    ``None``; writes ``obsm["X_indiseek_shared_<mod>"]``, ``obsm["X_indiseek_specific_<mod>"]`` and
    ``obsm["X_indiseek"]`` (the four blocks with equal weight, as :func:`fit` describes). For the CLIP-only baseline
    (``objective="clip"``) there are no specific keys and ``obsm["X_indiseek"]`` holds the two shared blocks.

    Examples
    --------
    >>> import indiseek as isk
    >>> train = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> model = isk.tl.fit(train, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
    >>> held_out = train[:50].copy()
    >>> isk.tl.write_representations(model, held_out)
    >>> held_out.obsm["X_indiseek_specific_rna"].shape
    (50, 50)
    """
    mdata = model.adata if mdata is None else mdata
    kinds = (
        (("shared", shared_key), ("specific", specific_key)) if model.module.has_specific else (("shared", shared_key),)
    )
    parts = {}
    for kind, key_of in kinds:
        for m in model.modality_names:
            parts[key_of(m)] = model.get_latent_representation(mdata, modality=m, kind=kind)
    for key, value in parts.items():
        mdata.obsm[key] = value
    # equal weight per block: shared features have norm 1; standardised specific ones have E||z||^2 = n_specific
    weights = [1.0, 1.0, model.module.n_specific**-0.5, model.module.n_specific**-0.5][: len(parts)]
    mdata.obsm[JOINT_KEY] = np.concatenate([w * v for w, v in zip(weights, parts.values(), strict=True)], axis=1)
