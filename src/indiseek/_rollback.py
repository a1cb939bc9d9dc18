"""A call that raises changes nothing: the keys a failed call wrote into a MuData are taken back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mudata import MuData


def _containers(mdata: MuData) -> list:
    """The key-value stores of a MuData and its modalities that IndiSeek's functions write to."""
    out = [mdata.uns, mdata.obsm, mdata.obsp]
    for mod in mdata.mod.values():
        out += [mod.uns, mod.obsm, mod.varm, mod.layers, mod.obsp]
    return out


@contextmanager
def unchanged_on_error(mdata: MuData) -> Iterator[None]:
    """If the block raises, remove the keys it added to ``mdata`` and put back the values it replaced.

    Values are kept by reference: the functions that run in the block assign new objects and never modify the user's
    arrays in place.
    """
    saved = [(store, dict(store.items())) for store in _containers(mdata)]
    frames = [(mod, mod.var.copy()) for mod in mdata.mod.values()]  # columns such as pp.prepare's centres
    obs_columns = list(mdata.obs.columns)  # scvi-tools' codes, e.g. obs["_scvi_batch"]
    try:
        yield
    except BaseException:
        added = [c for c in mdata.obs.columns if c not in obs_columns]
        if added:
            mdata.obs = mdata.obs.drop(columns=added)
        for mod, var in frames:
            if not mod.var.equals(var) or not mod.var.columns.equals(var.columns):
                mod.var = var
        for store, items in saved:
            for key in [k for k in store.keys() if k not in items]:
                del store[key]
            for key, value in items.items():
                if key not in store or store[key] is not value:
                    store[key] = value
        raise
