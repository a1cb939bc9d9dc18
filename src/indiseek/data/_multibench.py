"""Readers of the MultiBench files used in the IndiSeek paper (affect pickles and MIMIC)."""

from __future__ import annotations

import logging
import pickle
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mudata import MuData

from ._arrays import from_arrays

logger = logging.getLogger(__name__)

#: Dataset name -> (kind, binary label of the continuous annotation y), as in the FactorCL reference code.
_AFFECT = {
    "mosi": lambda y: (y >= 0).astype(np.int64),  # sentiment in [-3, 3]: non-negative -> 1
    "mosei": lambda y: (y >= 0).astype(np.int64),
    "humor": lambda y: (y >= 1).astype(np.int64),  # UR-FUNNY: labels below 1 -> -1 -> 0
    "sarcasm": lambda y: (y >= 1).astype(np.int64),  # MUStARD: likewise
}
_ALIASES = {"ur-funny": "humor", "urfunny": "humor", "mustard": "sarcasm", "mimic-iii": "mimic"}
DATASETS = (*_AFFECT, "mimic")
_SPLITS = ("train", "valid", "test")


def _affect(data: dict, dataset: str, modalities: Sequence[str]) -> MuData:
    """The affect pipeline of MultiBench (``aligned=True``, no z-normalisation) on the three splits."""
    parts: dict[str, list] = {m: [] for m in modalities}
    lengths, sentiment, split = [], [], []
    n_dropped = {}
    for name in _SPLITS:
        if name not in data:
            raise KeyError(f"The {dataset} pickle has no {name!r} split; it has {list(data)}.")
        block = data[name]
        missing = [k for k in (*modalities, "text", "labels") if k not in block]
        if missing:
            raise KeyError(f"Split {name!r} of the {dataset} pickle has no {missing[0]!r}; it has {list(block)}.")
        text = np.asarray(block["text"], dtype=np.float32)
        nonzero_steps = np.abs(text).max(axis=2) > 0
        keep = nonzero_steps.any(axis=1)  # MultiBench's drop_entry: samples whose text is all zeros are dropped
        n_dropped[name] = int((~keep).sum())
        start = np.argmax(nonzero_steps[keep], axis=1)  # aligned=True: each sample starts at its first text step
        n_steps = text.shape[1]
        valid = np.arange(n_steps)[None, :] >= start[:, None]
        for m in modalities:
            x = np.array(block[m], dtype=np.float32)[keep]
            x[np.isneginf(x)] = 0.0  # MultiBench sets -inf (in the audio features) to 0
            x[~valid] = 0.0  # the steps before the first text step are cut off by MultiBench's alignment
            parts[m].append(x)
        lengths.append(n_steps - start)
        sentiment.append(np.asarray(block["labels"], dtype=np.float64).reshape(len(text), -1)[keep, 0])
        split += [name] * int(keep.sum())
    if any(n_dropped.values()):
        logger.info("Dropped samples whose text is all zeros (as MultiBench does): %s", n_dropped)
    y = np.concatenate(sentiment)
    length = np.concatenate(lengths)
    mdata = from_arrays(
        *(np.concatenate(parts[m]) for m in modalities),
        labels={"label": _AFFECT[dataset](y), "annotation": y},
        names=modalities,
        lengths=(length, length),
        padding="start",
        split=split,
    )
    mdata.uns["multibench"] = {"dataset": dataset, "n_dropped": n_dropped}
    return mdata


def _mimic(data: dict, task: int) -> MuData:
    """MultiBench's MIMIC pipeline: inf/NaN to 0, global z-scores, ICD-9 (or mortality) labels, seeded 80/10/10 split."""
    static = np.array(data["adm_features_all"], dtype=np.float64)
    series = np.array(data["ep_tdata"], dtype=np.float64)
    for x, axes in ((static, 0), (series, (0, 1))):
        x[~np.isfinite(x)] = 0.0
        std = x.std(axis=axes)
        x -= x.mean(axis=axes)
        x /= np.where(std > 0, std, 1.0)
    n = len(static)
    if task >= 0:
        label = np.asarray(data["y_icd9"])[:, task].astype(np.int64)
    else:  # 6-way mortality class: the first of columns 1-5 of adm_labels_all that is positive, else 0
        adm = np.asarray(data["adm_labels_all"])[:, 1:6] > 0
        label = np.where(adm.any(axis=1), adm.argmax(axis=1) + 1, 0).astype(np.int64)
    order = list(range(n))
    random.Random(10).shuffle(order)  # the reference split: random.seed(10), then random.shuffle
    split = np.empty(n, dtype=object)
    split[order[: n // 10]], split[order[n // 10 : n // 5]], split[order[n // 5 :]] = "valid", "test", "train"
    mdata = from_arrays(static, series, labels={"label": label}, names=("static", "timeseries"), split=split)
    mdata.uns["multibench"] = {"dataset": "mimic", "task": int(task)}
    return mdata


def read_multibench(
    path: str | Path, dataset: str, *, modalities: Sequence[str] = ("vision", "text"), task: int = 7
) -> MuData:
    """Read a MultiBench data file into a MuData with its train/valid/test split, as the paper's Table 1 uses it.

    * Affect pickles (``dataset`` ``"mosi"``, ``"mosei"``, ``"humor"`` = UR-FUNNY, ``"sarcasm"`` = MUStARD): a dict
      of the splits ``"train"``, ``"valid"``, ``"test"``, each a dict of ``"vision"``, ``"audio"``, ``"text"``
      arrays ``(n, 50, d)`` padded with zeros at the front, and ``"labels"`` ``(n, 1, 1)``. As in MultiBench's
      loader, samples whose text is all zeros are dropped, ``-inf`` becomes 0, and each sample's valid steps start
      at its first non-zero text step (earlier steps are set to 0); the sequences keep their front padding
      (``padding="start"``, lengths in ``.obs["length"]``). ``obs["label"]`` is the binary label of the reference
      code (MOSI/MOSEI: annotation >= 0; UR-FUNNY/MUStARD: annotation >= 1), ``obs["annotation"]`` the raw value.
    * MIMIC (``dataset="mimic"``, the file ``im.pk``): ``"adm_features_all"`` ``(n, 5)`` becomes modality
      ``"static"`` and ``"ep_tdata"`` ``(n, 24, 12)`` modality ``"timeseries"``; non-finite values become 0 and
      each feature is z-scored over all samples (and time steps); ``obs["label"]`` is ICD-9 group ``task`` of
      ``"y_icd9"`` (task 7 in FactorCL and the paper; ``task=-1``: the 6-way mortality class). The split is the
      reference one (Python's ``random.seed(10)`` shuffle: 10 % valid, 10 % test, 80 % train); samples keep the
      file's order.

    ``obs["split"]`` holds each sample's split and ``uns["multibench"]`` what was read.

    Parameters
    ----------
    path
        The pickle file.
    dataset
        ``"mosi"``, ``"mosei"``, ``"humor"`` (or ``"ur-funny"``), ``"sarcasm"`` (or ``"mustard"``), ``"mimic"``.
    modalities
        The two affect modalities to read (the paper and FactorCL use vision and text).
    task
        MIMIC label: ICD-9 group index, or -1 for mortality.

    Returns
    -------
    MuData as built by :func:`from_arrays`.

    Examples
    --------
    >>> import pickle, tempfile, numpy as np
    >>> import indiseek as isk
    >>> rng = np.random.default_rng(0)
    >>> split = {
    ...     "vision": rng.normal(size=(4, 50, 20)),
    ...     "audio": rng.normal(size=(4, 50, 5)),
    ...     "text": rng.normal(size=(4, 50, 300)),
    ...     "labels": rng.normal(size=(4, 1, 1)),
    ... }
    >>> path = tempfile.mkdtemp() + "/mosi_data.pkl"
    >>> pickle.dump({"train": split, "valid": split, "test": split}, open(path, "wb"))
    >>> mdata = isk.data.read_multibench(path, "mosi")
    >>> mdata["text"].shape, mdata.obs["split"].value_counts()["train"]
    ((12, 15000), np.int64(4))
    """
    dataset = _ALIASES.get(str(dataset).lower(), str(dataset).lower())
    if dataset not in DATASETS:
        raise ValueError(f"Unknown MultiBench dataset {dataset!r}; choose one of {DATASETS}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}. MultiBench's data files are linked from its README.")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    if dataset == "mimic":
        return _mimic(data, task)
    modalities = tuple(modalities)
    if len(modalities) != 2 or set(modalities) - {"vision", "audio", "text"}:
        raise ValueError(f'`modalities` must be two of "vision", "audio", "text", got {modalities}.')
    return _affect(data, dataset, modalities)
