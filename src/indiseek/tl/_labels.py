"""Shared helpers for label-based tools."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData

from indiseek._constants import JOINT_KEY, UNS_KEY, shared_key, specific_key


def labels_of(mdata: MuData, groupby: str) -> pd.Series:
    """Cell labels from ``mdata.obs[groupby]``, refusing missing values with a clear message."""
    if groupby not in mdata.obs:
        raise KeyError(
            f"`groupby={groupby!r}` is not a column of `mdata.obs`; it has {list(mdata.obs.columns)}. "
            "(Labels stored in a modality can be pulled up with `mdata.pull_obs()`.)"
        )
    labels = mdata.obs[groupby]
    if labels.isna().any():
        raise ValueError(
            f"`mdata.obs[{groupby!r}]` has {int(labels.isna().sum())} missing label(s). Label every cell, or run "
            f"on the labelled cells only: `mdata[mdata.obs[{groupby!r}].notna()].copy()`."
        )
    return labels.astype(str)


def fitted_modalities(mdata: MuData) -> tuple[str, ...]:
    """Modalities with IndiSeek representations.

    From ``uns["indiseek"]`` (:func:`indiseek.tl.fit`), else those with ``.obsm`` keys written by
    :func:`indiseek.tl.write_representations`, in the MuData's modality order.
    """
    if UNS_KEY in mdata.uns:
        return tuple(np.asarray(mdata.uns[UNS_KEY]["modalities"]).astype(str))
    names = tuple(m for m in mdata.mod if specific_key(m) in mdata.obsm)
    if len(names) != 2:
        raise KeyError(
            "No IndiSeek representations found: run `indiseek.tl.fit(mdata)` or "
            "`indiseek.tl.write_representations(model, mdata)` first, or pass `use_rep`."
        )
    return names


def specific_keys(mdata: MuData, use_rep: tuple[str, str] | None) -> tuple[tuple[str, str], tuple[str, str]]:
    """((modality names), (obsm keys)) of the two specific representations."""
    if use_rep is not None:
        keys = tuple(use_rep)
        names = tuple(k.removeprefix("X_indiseek_specific_") for k in keys)
    else:
        names = fitted_modalities(mdata)
        keys = tuple(specific_key(m) for m in names)
    for key in keys:
        if key not in mdata.obsm:
            raise KeyError(f"`mdata.obsm[{key!r}]` is missing; it has {list(mdata.obsm)}.")
    return names, keys


def representation_keys(mdata: MuData) -> list[str]:
    """``.obsm`` keys of the IndiSeek representations present: shared and specific per modality, then the joint."""
    names = fitted_modalities(mdata)
    keys = [shared_key(m) for m in names] + [specific_key(m) for m in names] + [JOINT_KEY]
    return [k for k in keys if k in mdata.obsm]
