"""Deep snapshots of a MuData, to prove that a function changed nothing but its documented keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _freeze(value):
    if sp.issparse(value):
        return ("sparse", value.format, value.shape, value.toarray().copy())
    if isinstance(value, pd.DataFrame):
        return ("frame", value.copy(deep=True))
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, list | tuple):  # h5py stores lists as arrays
        return ("array", np.asarray(value))
    if isinstance(value, dict) or hasattr(value, "keys"):
        return ("dict", {k: _freeze(value[k]) for k in value.keys()})
    return ("value", value)


def snapshot(mdata) -> dict[str, object]:
    """Every array, frame and ``uns`` entry of a MuData and its modalities, by path."""
    out = {}

    def add(prefix, adata_like, attrs):
        for attr in attrs:
            container = getattr(adata_like, attr)
            if attr in ("obs", "var"):  # column by column: a new column is an added key
                for column in container.columns:
                    out[f"{prefix}.{attr}[{column!r}]"] = _freeze(container[[column]])
                out[f"{prefix}.{attr}_names"] = ("index", list(container.index))
            elif attr == "X":
                out[f"{prefix}.X"] = _freeze(container)
            else:
                for key in container.keys():
                    out[f"{prefix}.{attr}[{key!r}]"] = _freeze(container[key])

    add("mdata", mdata, ("obs", "var", "obsm", "obsp", "uns"))
    for name, mod in mdata.mod.items():
        add(f"mod[{name!r}]", mod, ("X", "obs", "var", "obsm", "varm", "layers", "obsp", "uns"))
    return out


def _equal(a, b) -> bool:
    if a[0] != b[0]:
        return False
    kind = a[0]
    if kind == "sparse":
        return a[1] == b[1] and a[2] == b[2] and np.array_equal(a[3], b[3])
    if kind == "frame":
        return a[1].equals(b[1]) and list(a[1].columns) == list(b[1].columns)
    if kind == "array":
        x, y = a[1], b[1]
        if x.dtype.kind in "UO" and y.dtype.kind in "UO":  # strings: h5py may return object arrays
            return x.shape == y.shape and np.array_equal(x.astype(str), y.astype(str))
        return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
    if kind == "dict":
        return a[1].keys() == b[1].keys() and all(_equal(a[1][k], b[1][k]) for k in a[1])
    return a[1] == b[1]


def changes(before: dict, after: dict) -> tuple[set[str], set[str], set[str]]:
    """(added, removed, modified) paths between two snapshots."""
    added = set(after) - set(before)
    removed = set(before) - set(after)
    modified = {k for k in set(before) & set(after) if not _equal(before[k], after[k])}
    return added, removed, modified
