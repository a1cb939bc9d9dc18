"""Setup checks: the scvi-tools registry fields of a modality, and the model's and schedule's arguments."""

from __future__ import annotations

import logging
import numbers

import numpy as np
import pandas as pd
from mudata import MuData
from scvi.data.fields import MuDataCategoricalObsField, MuDataLayerField, MuDataNumericalObsField, MuDataObsmField

from indiseek._constants import BATCH_KEY, LENGTH_KEY, SEQUENCE_KEY
from indiseek._validation import check_layer


def modality_fields(mdata: MuData, key: str, modality: str, layer: str | None, obsm_key: str | None) -> list:
    """Fields registering modality ``modality`` as ``key`` (``"x1"``/``"x2"``) from ``.X``, a layer or ``.obsm``."""
    mod = mdata.mod[modality]
    if layer is not None and obsm_key is not None:
        raise ValueError(f"Give either `{key}_layer` or `{key}_obsm_key`, not both.")
    if obsm_key is not None:
        if obsm_key not in mod.obsm:
            raise KeyError(
                f"`.obsm[{obsm_key!r}]` is not in modality {modality!r}; it has {list(mod.obsm)}. Run "
                "`indiseek.pp.prepare(mdata)` or pass an existing key."
            )
        return [MuDataObsmField(key, obsm_key, mod_key=modality, correct_data_format=False, mod_required=True)]
    fields = []
    if SEQUENCE_KEY in mod.uns:  # a sequence from `indiseek.data.from_arrays`: its lengths give the mask
        if LENGTH_KEY not in mod.obs:
            raise KeyError(
                f"Modality {modality!r} is a sequence but has no `.obs[{LENGTH_KEY!r}]` with the valid length of "
                "each sequence; build it with `indiseek.data.from_arrays`."
            )
        fields.append(MuDataNumericalObsField(f"{key}_{LENGTH_KEY}", LENGTH_KEY, mod_key=modality, mod_required=True))
    if layer is not None:
        check_layer(mod, layer, modality, " Run `indiseek.pp.prepare(mdata)` or pass an existing layer.")
    fields.append(
        MuDataLayerField(
            key, layer, mod_key=modality, is_count_data=False, correct_data_format=False, mod_required=True
        )
    )
    return fields


def batch_fields(mdata: MuData, batch_key: str | None) -> list:
    """The field registering ``mdata.obs[batch_key]`` as the batch covariate (none for ``batch_key=None``).

    Checked before anything is registered: the column exists and has no missing labels.
    """
    if batch_key is None:
        return []
    if not isinstance(batch_key, str) or batch_key not in mdata.obs:
        modality_columns = [c for c in mdata.obs.columns if ":" in str(c)]
        raise KeyError(
            f"`batch_key={batch_key!r}` is not a column of `mdata.obs`"
            + (f" (modality columns need their prefix, e.g. {modality_columns[0]!r})" if modality_columns else "")
            + f"; it has {list(mdata.obs.columns)}."
        )
    labels = mdata.obs[batch_key]
    missing = int(pd.isna(labels).sum())
    if missing:
        raise ValueError(
            f"`mdata.obs[{batch_key!r}]` has {missing} missing batch label(s). Give every cell a batch (e.g. "
            f"`mdata.obs[{batch_key!r}] = mdata.obs[{batch_key!r}].astype(str)` keeps NaN as a batch of its own), "
            "or subset to the labelled cells."
        )
    return [MuDataCategoricalObsField(BATCH_KEY, batch_key, mod_key=None)]


def check_batch_sizes(codes: np.ndarray, names, batch_size: int) -> None:
    """Raise if a batch has too few training cells for a within-batch contrast in batches of ``batch_size`` cells.

    Stage 1 contrasts each cell with the cells of its own batch in the same minibatch: a batch with fewer than 2
    cells per minibatch on average would hardly ever be contrasted.
    """
    counts = np.bincount(codes, minlength=len(names))
    expected = counts / max(len(codes), 1) * batch_size
    small = [(names[k], int(counts[k])) for k in np.flatnonzero(expected < 2)]
    if small:
        need = int(np.ceil(2 * len(codes) / max(counts.min(), 1)))
        raise ValueError(
            f"Batch(es) {small} (name, training cells) have too few cells for `batch_size={batch_size}`: a "
            f"minibatch of {batch_size} of the {len(codes)} training cells holds fewer than 2 of theirs on average, "
            "so they are hardly ever contrasted within their batch. Merge or drop these batches, or raise "
            f"`batch_size` (to at least {need})."
        )


def check_positive_int(**values) -> None:
    """Raise unless every value is a positive integer (named by its keyword in the message)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_model_options(lam, batch_weight, **sizes) -> None:
    """Raise unless the model's options are usable, naming the one that is not.

    ``lam``: a positive finite number or ``"auto"``; ``batch_weight``: a non-negative finite number; ``sizes``:
    positive integers, each named by its keyword in the message.
    """
    if not (isinstance(lam, str) and lam == "auto") and not (
        isinstance(lam, numbers.Real) and np.isfinite(lam) and lam > 0
    ):
        raise ValueError(f'`lam` must be a positive finite number or "auto", got {lam!r}.')
    if not (isinstance(batch_weight, numbers.Real) and np.isfinite(batch_weight) and batch_weight >= 0):
        raise ValueError(f"`batch_weight` must be a non-negative finite number, got {batch_weight!r}.")
    check_positive_int(**sizes)


def check_schedule(lr: float, batch_size: int, validation_size: float) -> None:
    """Raise unless the training schedule's learning rate, batch size and validation share are usable."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 2:
        raise ValueError(
            f"`batch_size` must be an integer of at least 2 (contrastive losses need pairs), got {batch_size!r}."
        )
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"`lr` must be a positive finite number, got {lr}.")
    if not 0 <= validation_size < 1:
        raise ValueError(f"`validation_size` must be in [0, 1), got {validation_size}.")


def register_quietly(adata_manager, mdata: MuData, **kwargs) -> None:
    """Register the fields without scvi-tools' "Generating sequential column names" log lines."""
    fields_logger = logging.getLogger("scvi.data.fields")
    level = fields_logger.level
    fields_logger.setLevel(logging.WARNING)
    try:
        adata_manager.register_fields(mdata, **kwargs)
    finally:
        fields_logger.setLevel(level)
