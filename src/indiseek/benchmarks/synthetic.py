"""The paper's synthetic study: masking importance of specific encoders trained with oracle shared features."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

#: Objectives of the study (``"indiseek_noswitch"`` equals ``"indiseek"`` when one oracle stands for both C_i and
#: C_{3-i}, and the CLIP-only baseline has no specific encoder).
STUDY_OBJECTIVES = ("indiseek", "factorcl", "infodisen")
STUDY_LAMS = (0.01, 0.1, 1.0, 10.0)


def _one_run(spec: dict) -> dict:
    """Train one specific encoder and score it (runs in a worker process)."""
    import torch

    from indiseek.benchmarks import train_oracle_specific
    from indiseek.datasets import IDEAL_COORDINATES, paper_setting
    from indiseek.tl import feature_importance

    torch.set_num_threads(1)  # tiny networks: one thread per run, runs in parallel
    k, seed = spec["setting"], spec["seed"]
    x, shared = paper_setting(k, spec["n_train"] + spec["n_test"], seed=seed)
    train, test = slice(0, spec["n_train"]), slice(spec["n_train"], None)
    start = time.perf_counter()
    module = train_oracle_specific(
        x[train],
        shared[train],
        objective=spec["objective"],
        lam=spec["lam"],
        estimator=spec["estimator"],
        n_estimator_layers=spec["n_estimator_layers"],
        standardize_specific=spec["standardize_specific"],
        max_epochs=spec["max_epochs"],
        n_estimator_steps=spec["n_estimator_steps"],
        lr=spec["lr"],
        seed=seed,
    )
    seconds = time.perf_counter() - start
    uniform = feature_importance(module, n_features=x.shape[1], seed=seed)
    on_test = feature_importance(module, points=x[test])
    ideal = list(IDEAL_COORDINATES[k])
    row = {**{k_: v for k_, v in spec.items() if k_ not in ("n_train", "n_test")}, "seconds": round(seconds, 2)}
    row.update({f"imp_{j}": float(v) for j, v in uniform.items()})
    row["ideal_mass"] = float(uniform.loc[ideal].sum())
    row["ideal_mass_test"] = float(on_test.loc[ideal].sum())
    return row


def run_synthetic(
    settings: Sequence[int] = (1, 2, 3, 4),
    objectives: Sequence[str] = STUDY_OBJECTIVES,
    lams: Sequence[float] = STUDY_LAMS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    estimator: str = "mlp",
    n_estimator_layers: int = 2,
    n_estimator_steps: int = 5,
    standardize_specific: bool = True,
    max_epochs: int = 20,
    lr: float = 1e-3,
    n_train: int = 10_000,
    n_test: int = 1_000,
    jobs: int = 1,
) -> pd.DataFrame:
    r"""Run the synthetic study: one trained :math:`h_1` per setting, objective, :math:`\lambda` and seed.

    Each run draws ``n_train + n_test`` samples of :func:`~indiseek.datasets.paper_setting`, trains the specific
    encoder with the oracle shared features (:func:`~indiseek.benchmarks.train_oracle_specific`; 5-layer ReLU MLPs
    of width 100, :math:`p_1 = 10`, batch 128) and scores it with
    :func:`~indiseek.tl.feature_importance` on 1,000 uniform points in :math:`[-10, 10]^6` (the paper's protocol)
    and, as a check, on the ``n_test`` held-out samples.

    Parameters
    ----------
    settings, objectives, lams, seeds
        The grid.
    estimator, n_estimator_layers, n_estimator_steps, standardize_specific, max_epochs, lr
        CLUB estimator, specific-feature standardisation and schedule (the same for every objective).
    n_train, n_test
        Samples per run.
    jobs
        Runs in parallel (worker processes, one thread each).

    Returns
    -------
    One row per run: the grid values, ``seconds`` of training, ``imp_1`` ... ``imp_6`` (uniform points),
    ``ideal_mass`` (importance on the setting's ideal coordinates) and ``ideal_mass_test`` (on the held-out
    samples).

    Examples
    --------
    >>> from indiseek.benchmarks.synthetic import run_synthetic
    >>> runs = run_synthetic([2], ["indiseek"], [0.01], [0], max_epochs=1, n_train=512, n_test=64)
    >>> runs[["setting", "objective", "lam"]].values.tolist()
    [[2, 'indiseek', 0.01]]
    """
    specs = [
        {
            "setting": k,
            "objective": objective,
            "lam": lam,
            "seed": seed,
            "estimator": estimator,
            "n_estimator_layers": n_estimator_layers,
            "n_estimator_steps": n_estimator_steps,
            "standardize_specific": standardize_specific,
            "max_epochs": max_epochs,
            "lr": lr,
            "n_train": n_train,
            "n_test": n_test,
        }
        for k, objective, lam, seed in itertools.product(settings, objectives, lams, seeds)
    ]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(_one_run, specs))
    else:
        rows = [_one_run(spec) for spec in specs]
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean importance per coordinate and mean (and standard deviation) of the ideal mass over seeds.

    Examples
    --------
    >>> import pandas as pd
    >>> from indiseek.benchmarks.synthetic import summarise
    >>> runs = pd.DataFrame(
    ...     {
    ...         "setting": [1, 1],
    ...         "objective": ["indiseek"] * 2,
    ...         "estimator": ["mlp"] * 2,
    ...         "n_estimator_steps": [5, 5],
    ...         "max_epochs": [20, 20],
    ...         "lam": [0.1, 0.1],
    ...         "seed": [0, 1],
    ...         "imp_1": [0.0, 0.2],
    ...         "ideal_mass": [1.0, 0.8],
    ...         "ideal_mass_test": [1.0, 0.9],
    ...     }
    ... )
    >>> summarise(runs)[["imp_1", "ideal_mass", "ideal_mass_sd", "n_seeds"]].values.round(3).tolist()
    [[0.1, 0.9, 0.141, 2.0]]
    """
    keys = [
        "setting",
        "objective",
        "estimator",
        "n_estimator_layers",
        "n_estimator_steps",
        "standardize_specific",
        "max_epochs",
        "lam",
    ]
    keys = [k for k in keys if k in runs]
    values = [c for c in runs if c.startswith("imp_")] + ["ideal_mass", "ideal_mass_test"]
    grouped = runs.groupby(keys, sort=True)
    table = grouped[values].mean()
    table["ideal_mass_sd"] = grouped["ideal_mass"].std()
    table["n_seeds"] = grouped["seed"].nunique().astype(float)
    return table.reset_index()


def plot_summary(summary: pd.DataFrame, path: str | Path | None = None):
    """One row of importance panels (one per lambda) per setting and objective, as in the paper's figures."""
    import matplotlib.pyplot as plt

    from indiseek.datasets import IDEAL_COORDINATES
    from indiseek.pl import feature_importance

    rows = list(summary.groupby(["setting", "objective"], sort=True))
    n_cols = summary.groupby(["setting", "objective"]).size().max()
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.1 * n_cols, 1.9 * len(rows)), sharey=True, squeeze=False)
    imp_cols = [c for c in summary if c.startswith("imp_")]
    for r, ((k, objective), part) in enumerate(rows):
        table = part.set_index("lam")[imp_cols]
        table.columns = [c.removeprefix("imp_") for c in imp_cols]
        table.index = [f"S{k} {objective} λ={lam:g}" for lam in table.index]
        feature_importance(table, highlight=[str(j) for j in IDEAL_COORDINATES[k]], ax=axes[r, : len(table)])
        for axis in axes[r, len(table) :]:
            axis.set_visible(False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (importance in %, ideal mass as mean ± sd)."""
    imp_cols = [c for c in summary if c.startswith("imp_")]
    head = ["setting", "objective", "λ"] + [c.removeprefix("imp_") for c in imp_cols] + ["ideal mass", "on test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in summary.iterrows():
        cells = [str(row["setting"]), row["objective"], f"{row['lam']:g}"]
        cells += [f"{100 * row[c]:.1f}" for c in imp_cols]
        sd = 0.0 if np.isnan(row["ideal_mass_sd"]) else row["ideal_mass_sd"]
        cells += [f"{row['ideal_mass']:.3f} ± {sd:.3f}", f"{row['ideal_mass_test']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
