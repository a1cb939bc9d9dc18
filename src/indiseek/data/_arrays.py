"""Arrays in, MuData out: the generic tensor adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
from mudata import MuData

from indiseek._constants import LENGTH_KEY, SEQUENCE_KEY
from indiseek._sequences import step_indicators
from indiseek._validation import check_finite


def _as_numpy(x, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{what} must be a numeric array, got dtype {x.dtype}.")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"{what} must have shape (n_samples, n_features) or (n_samples, n_steps, n_features), got {x.shape}."
        )
    if min(x.shape) < 1:
        raise ValueError(f"{what} is empty (shape {x.shape}).")
    check_finite(x, what)
    return x


def _lengths(lengths, x: np.ndarray, padding: str, what: str) -> np.ndarray:
    n, n_steps = x.shape[:2]
    if lengths is None:
        return np.full(n, n_steps, dtype=np.int64)
    lengths = np.asarray(lengths.detach().cpu() if hasattr(lengths, "detach") else lengths)
    if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.number) or np.any(np.mod(lengths, 1)):
        raise ValueError(f"The lengths of {what} must be {n} integers (one per sample), got shape {lengths.shape}.")
    lengths = lengths.astype(np.int64)
    if lengths.min() < 1 or lengths.max() > n_steps:
        raise ValueError(f"The lengths of {what} must lie in [1, {n_steps}]; got {lengths.min()}..{lengths.max()}.")
    padded = step_indicators(lengths, n_steps, padding) == 0
    n_bad = int(np.count_nonzero(np.abs(x).max(axis=2)[padded]))
    if n_bad:
        raise ValueError(
            f"{what} has non-zero values in {n_bad} padded time step(s) (beyond `lengths`, padding at the {padding}). "
            'Pass the true lengths, `padding="start"` for sequences padded at the front, or zero the padding.'
        )
    return lengths


def _labels_frame(labels, n: int) -> pd.DataFrame:
    if labels is None:
        return pd.DataFrame(index=range(n))
    if isinstance(labels, pd.DataFrame):
        frame = labels.reset_index(drop=True)
    elif isinstance(labels, Mapping):
        frame = pd.DataFrame({str(k): np.asarray(v).ravel() for k, v in labels.items()})
    else:
        frame = pd.DataFrame({"label": np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)})
    if len(frame) != n:
        raise ValueError(f"`labels` must have one entry per sample ({n}), got {len(frame)}.")
    return frame


def from_arrays(
    x1,
    x2,
    labels=None,
    *,
    names: Sequence[str] = ("x1", "x2"),
    lengths: Sequence | None = None,
    padding: Literal["end", "start"] = "end",
    split=None,
) -> MuData:
    """Build a MuData of two paired modalities from arrays, for training IndiSeek on any tensor data.

    Flat arrays ``(n_samples, n_features)`` become a modality's ``.X``. Sequences ``(n_samples, n_steps,
    n_features)`` are stored flattened step after step (``.X`` of shape ``(n_samples, n_steps * n_features)``,
    features named ``"<name>_t<step>_<feature>"``), with the valid length of each sequence in
    ``.obs["length"]`` and ``.uns["indiseek_sequence"] = {"n_steps", "n_features", "padding"}``. IndiSeek reads
    both layouts through the same model and data path; with ``encoder="transformer"`` it encodes sequences with
    :class:`~indiseek.nn.SequenceEncoder`, attending to the valid steps only. Values are copied as ``float32`` and
    otherwise unchanged.

    Parameters
    ----------
    x1, x2
        NumPy arrays or torch tensors with the same number of samples, row ``k`` of both describing sample ``k``.
    labels
        Sample annotations for ``mdata.obs``: one array (stored as ``"label"``), a dict of arrays, or a DataFrame.
    names
        Names of the two modalities.
    lengths
        Per modality, the number of valid time steps of each sequence (``None``, or ``None`` for a modality: all
        steps are valid). Padded steps must hold zeros.
    padding
        Where the padding of shorter sequences sits: ``"end"`` (valid steps first) or ``"start"`` (as in the
        MultiBench affect pickles).
    split
        Optional split of each sample (e.g. ``"train"``, ``"valid"``, ``"test"``), stored in ``obs["split"]``.

    Returns
    -------
    MuData with modalities ``names[0]`` and ``names[1]`` and sample names ``"0"``, ``"1"``, ...

    Examples
    --------
    >>> import numpy as np
    >>> import indiseek as isk
    >>> rng = np.random.default_rng(0)
    >>> mdata = isk.data.from_arrays(
    ...     rng.normal(size=(100, 6, 4)),
    ...     rng.normal(size=(100, 8)),
    ...     labels=rng.integers(2, size=100),
    ...     names=("video", "text"),
    ... )
    >>> mdata["video"].shape, mdata["video"].uns["indiseek_sequence"]["n_steps"], mdata.obs["label"].shape
    ((100, 24), 6, (100,))
    """
    names = tuple(str(n) for n in names)
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"`names` must be two different modality names, got {names}.")
    if padding not in ("end", "start"):
        raise ValueError(f'`padding` must be "end" or "start", got {padding!r}.')
    arrays = [_as_numpy(x, f"Modality {name!r}") for x, name in zip((x1, x2), names, strict=True)]
    n = arrays[0].shape[0]
    if arrays[1].shape[0] != n:
        raise ValueError(
            f"The modalities are not paired: {names[0]!r} has {n} samples and {names[1]!r} {arrays[1].shape[0]}. "
            "Row k of both arrays must describe the same sample."
        )
    lengths = (None, None) if lengths is None else tuple(lengths)
    if len(lengths) != 2:
        raise ValueError("`lengths` must hold one entry per modality, e.g. `lengths=(lengths1, None)`.")
    obs_names = pd.Index([str(k) for k in range(n)])
    mods = {}
    for x, name, length in zip(arrays, names, lengths, strict=True):
        if x.ndim == 2:
            if length is not None:
                raise ValueError(f"Modality {name!r} is not a sequence (2-D array): pass `None` as its lengths.")
            var_names = [f"{name}_{j}" for j in range(x.shape[1])]
            mod = ad.AnnData(np.ascontiguousarray(x, dtype=np.float32), obs=pd.DataFrame(index=obs_names))
        else:
            n_steps, n_features = x.shape[1:]
            valid = _lengths(length, x, padding, f"Modality {name!r}")
            var_names = [f"{name}_t{t}_{j}" for t in range(n_steps) for j in range(n_features)]
            flat = np.ascontiguousarray(x.reshape(n, n_steps * n_features), dtype=np.float32)
            mod = ad.AnnData(flat, obs=pd.DataFrame({LENGTH_KEY: valid}, index=obs_names))
            mod.uns[SEQUENCE_KEY] = {"n_steps": int(n_steps), "n_features": int(n_features), "padding": padding}
        mod.var_names = var_names
        mods[name] = mod
    mdata = MuData(mods)
    frame = _labels_frame(labels, n)
    for column in frame:
        mdata.obs[column] = frame[column].to_numpy()
    if split is not None:
        split = np.asarray(split).astype(str)
        if split.shape != (n,):
            raise ValueError(f"`split` must have one entry per sample ({n}), got shape {split.shape}.")
        mdata.obs["split"] = pd.Categorical(split)
    return mdata


def to_arrays(mdata: MuData, modality: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A modality of a MuData built by :func:`from_arrays` as an array, and the lengths of its sequences.

    Parameters
    ----------
    mdata
        MuData from :func:`from_arrays` (or :func:`read_multibench`).
    modality
        Modality name.

    Returns
    -------
    ``(x, lengths)``: ``x`` of shape ``(n, d)`` with ``lengths=None``, or ``(n, T, d)`` with the lengths.

    Examples
    --------
    >>> import numpy as np
    >>> import indiseek as isk
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> mdata = isk.data.from_arrays(x, np.ones((2, 5)), names=("a", "b"))
    >>> back, lengths = isk.data.to_arrays(mdata, "a")
    >>> bool(np.array_equal(back, x)), lengths.tolist()
    (True, [3, 3])
    """
    if modality not in mdata.mod:
        raise KeyError(f"Modality {modality!r} is not in the MuData; it has {list(mdata.mod)}.")
    mod = mdata.mod[modality]
    x = mod.X.toarray() if hasattr(mod.X, "toarray") else np.asarray(mod.X)
    spec = mod.uns.get(SEQUENCE_KEY)
    if spec is None:
        return x, None
    return x.reshape(mod.n_obs, spec["n_steps"], spec["n_features"]), mod.obs[LENGTH_KEY].to_numpy()
