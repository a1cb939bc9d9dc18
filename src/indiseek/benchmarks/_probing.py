"""Fit an objective on a split data set and probe its joint representation: one run of a probe benchmark."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence

import numpy as np
from mudata import MuData

from indiseek._constants import SEQUENCE_KEY


def fit_and_probe(
    mdata: MuData,
    labels: Sequence[str],
    *,
    objective: str,
    lam: float,
    seed: int,
    encoder: str = "mlp",
    split_key: str = "split",
    **fit_kwargs,
) -> dict[str, float]:
    r"""Fit :func:`indiseek.tl.fit` on the ``"train"`` samples and probe ``X_indiseek`` on the ``"test"`` samples.

    Returns the test accuracy per label and the training ``seconds``. ``lam`` is ignored by ``"clip"`` (stage 1
    only, probed on :math:`(C_1, C_2)`); ``encoder`` applies to sequence modalities only.
    """
    from indiseek.tl import fit, probe_accuracy

    split = mdata.obs[split_key].astype(str).to_numpy()
    train, test = split == "train", split == "test"
    has_sequence = any(SEQUENCE_KEY in mod.uns for mod in mdata.mod.values())
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # scvi-tools prints why early stopping ended stage 1
        fit(
            mdata,
            objective=objective,
            lam=1.0 if objective == "clip" or np.isnan(lam) else lam,
            encoder=encoder if has_sequence else "mlp",
            train_indices=np.flatnonzero(train),
            seed=seed,
            enable_progress_bar=False,
            **fit_kwargs,
        )
    row = {"seconds": round(time.perf_counter() - start, 2)}
    features = mdata.obsm["X_indiseek"]
    for label in labels:
        row[label] = probe_accuracy(features, mdata.obs[label].to_numpy(), train, test)
    return row


def grid(objectives: Sequence[str], lams: Sequence[float]) -> list[tuple[str, float]]:
    """(objective, lambda) pairs; the CLIP-only baseline has no lambda and appears once (with ``nan``)."""
    return [(o, lam) for o in objectives for lam in ([np.nan] if o == "clip" else lams)]


def run_specs(function, specs: list[dict], jobs: int) -> list[dict]:
    """``function`` on each spec, in ``jobs`` worker processes (the CPU threads split between them)."""
    import torch

    threads = max(1, torch.get_num_threads() // max(1, jobs))
    specs = [{**spec, "threads": threads} for spec in specs]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            return list(pool.map(function, specs))
    return [function(spec) for spec in specs]


def mean_over_seeds(runs, keys: Sequence[str], values: Sequence[str]):
    """Mean and standard error (``<value>_se``) of ``values`` over seeds per ``keys``, and ``n_seeds``.

    A ``lam`` of ``nan`` (the CLIP-only baseline, raw-input references) forms its own group and stays ``nan``.
    """
    grouped = runs.assign(lam=runs["lam"].fillna(-1.0)).groupby(list(keys), sort=True)
    table = grouped[list(values)].mean()
    for value in values:
        table[f"{value}_se"] = grouped[value].sem()
    table["n_seeds"] = grouped["seed"].nunique()
    table = table.reset_index()
    table["lam"] = table["lam"].where(table["lam"] >= 0)
    return table
