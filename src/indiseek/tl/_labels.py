"""Shared helpers for label-based tools."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData

from indiseek._constants import UNS_KEY, specific_key


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


def specific_keys(mdata: MuData, use_rep: tuple[str, str] | None) -> tuple[tuple[str, str], tuple[str, str]]:
    """((modality names), (obsm keys)) of the two specific representations written by :func:`indiseek.tl.fit`."""
    if use_rep is not None:
        keys = tuple(use_rep)
        names = tuple(k.removeprefix("X_indiseek_specific_") for k in keys)
    else:
        if UNS_KEY not in mdata.uns:
            raise KeyError("No IndiSeek representations found: run `indiseek.tl.fit(mdata)` first, or pass `use_rep`.")
        names = tuple(np.asarray(mdata.uns[UNS_KEY]["modalities"]).astype(str))
        keys = tuple(specific_key(m) for m in names)
    for key in keys:
        if key not in mdata.obsm:
            raise KeyError(f"`mdata.obsm[{key!r}]` is missing; it has {list(mdata.obsm)}.")
    return names, keys
