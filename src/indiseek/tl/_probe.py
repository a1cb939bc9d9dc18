"""Linear probes: how much of a label a representation makes linearly readable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._labels import labels_of, representation_keys


def probe_accuracy(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, *, max_iter: int = 1000
) -> float:
    """Test accuracy of a logistic regression fitted on the training rows (features standardised on them).

    Parameters
    ----------
    features
        ``(n, d)`` features.
    labels
        ``n`` labels.
    train, test
        Boolean masks (or integer positions) of the training and test rows.
    max_iter
        Iterations of the L-BFGS solver.

    Returns
    -------
    Share of test rows whose label the probe predicts.

    Examples
    --------
    >>> import numpy as np
    >>> from indiseek.tl import probe_accuracy
    >>> x = np.r_[0:10, 20:30][:, None].astype(float)
    >>> probe_accuracy(x, (x[:, 0] > 15).astype(int), np.arange(0, 20, 2), np.arange(1, 20, 2))
    1.0
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(features[train], labels[train])
    return float(probe.score(features[test], labels[test]))


def _features(mdata: MuData, key: str) -> np.ndarray:
    if key in mdata.mod:  # before .obsm, where MuData keeps a presence mask under each modality's name
        x = mdata.mod[key].X
    elif key in mdata.obsm:
        x = mdata.obsm[key]
    else:
        raise KeyError(
            f"{key!r} is neither a key of `mdata.obsm` ({list(mdata.obsm)}) nor a modality ({list(mdata.mod)})."
        )
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return x.reshape(len(x), -1)


def linear_probe(
    mdata: MuData,
    label_key: str | Sequence[str] = "label",
    *,
    use_rep: Sequence[str] | None = None,
    split_key: str = "split",
    train: str = "train",
    test: str = "test",
    max_iter: int = 1000,
    key_added: str = "indiseek_linear_probe",
    copy: bool = False,
) -> MuData | None:
    """Linear-probe accuracy of representations: logistic regression fitted on the training split, scored on the test split.

    The protocol of the paper's MultiBench table, the same for every objective: a scikit-learn
    :class:`~sklearn.linear_model.LogisticRegression` (L-BFGS, ``C = 1``) on standardised features (the reference
    code fits unscaled features, where L-BFGS stops at its iteration cap). With the defaults, each IndiSeek
    representation present is probed: the shared and specific ones per modality, and ``"X_indiseek"``, the
    concatenation :math:`(C_1, C_2, Z_1, Z_2)` (for the CLIP-only baseline, :math:`(C_1, C_2)`).

    Parameters
    ----------
    mdata
        MuData with the representations (e.g. after :func:`~indiseek.tl.fit`) and the labels in ``.obs``.
    label_key
        Column(s) of ``mdata.obs`` with the labels to predict.
    use_rep
        Keys of ``mdata.obsm`` to probe, or modality names to probe a modality's input ``.X`` (flattened); the
        inputs are the ceiling for a complete representation. ``None``: the IndiSeek representations present.
    split_key
        Column of ``mdata.obs`` with each sample's split.
    train, test
        Values of ``obs[split_key]`` that mark the training and test samples (others, e.g. ``"valid"``, are unused).
    max_iter
        Iterations of the L-BFGS solver.
    key_added
        Key in ``.uns``.
    copy
        Return a copy instead of writing into ``mdata``.

    Returns
    -------
    The copy if ``copy=True``, else ``None``. Written: ``uns["<key_added>"]`` with ``accuracy`` (a DataFrame:
    one row per representation, one column per label), ``n_train`` and ``n_test``.

    Examples
    --------
    >>> import numpy as np
    >>> import indiseek as isk
    >>> rng = np.random.default_rng(0)
    >>> x1, x2 = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    >>> mdata = isk.data.from_arrays(
    ...     x1, x2, labels=(x1[:, 0] > 0).astype(int), split=np.where(np.arange(200) < 150, "train", "test")
    ... )
    >>> isk.tl.linear_probe(mdata, use_rep=["x1", "x2"])
    >>> acc = mdata.uns["indiseek_linear_probe"]["accuracy"]["label"]
    >>> bool(acc["x1"] > 0.9), bool(acc["x2"] < 0.7)
    (True, True)
    """
    label_keys = [label_key] if isinstance(label_key, str) else list(label_key)
    labels = {k: labels_of(mdata, k).to_numpy() for k in label_keys}
    if split_key not in mdata.obs:
        raise KeyError(
            f"`split_key={split_key!r}` is not a column of `mdata.obs`; it has {list(mdata.obs.columns)}. Store each "
            'sample\'s split there (e.g. `isk.data.from_arrays(..., split=...)`), with values "train" and "test".'
        )
    split = mdata.obs[split_key].astype(str).to_numpy()
    is_train, is_test = split == train, split == test
    for name, mask in ((train, is_train), (test, is_test)):
        if not mask.any():
            raise ValueError(
                f"No sample has `obs[{split_key!r}] == {name!r}`; its values are {sorted(set(split))}. Pass `train=` "
                "and `test=`."
            )
    for key, y in labels.items():
        if len(np.unique(y[is_train])) < 2:
            raise ValueError(f"Label {key!r} has a single class in the training split; a probe needs two or more.")
    keys = representation_keys(mdata) if use_rep is None else [use_rep] if isinstance(use_rep, str) else list(use_rep)
    mdata = mdata.copy() if copy else mdata
    accuracy = pd.DataFrame(index=pd.Index(keys, name="representation"), columns=label_keys, dtype=float)
    for key in keys:
        x = _features(mdata, key)
        for name, y in labels.items():
            accuracy.loc[key, name] = probe_accuracy(x, y, is_train, is_test, max_iter=max_iter)
    mdata.uns[key_added] = {"accuracy": accuracy, "n_train": int(is_train.sum()), "n_test": int(is_test.sum())}
    return mdata if copy else None
