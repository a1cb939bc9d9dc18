"""Setup checks: the scvi-tools registry fields of a modality, and the model's and schedule's arguments."""

from __future__ import annotations

import logging

import numpy as np
from mudata import MuData
from scvi.data.fields import MuDataLayerField, MuDataNumericalObsField, MuDataObsmField

from indiseek._constants import LENGTH_KEY, SEQUENCE_KEY


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
    if layer is not None and layer not in mod.layers:
        raise KeyError(
            f"Layer {layer!r} is not in modality {modality!r}; it has {list(mod.layers)}. Run "
            "`indiseek.pp.prepare(mdata)` or pass an existing layer."
        )
    fields.append(
        MuDataLayerField(
            key, layer, mod_key=modality, is_count_data=False, correct_data_format=False, mod_required=True
        )
    )
    return fields


def check_positive_int(**values) -> None:
    """Raise unless every value is a positive integer (named by its keyword in the message)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


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
