"""The paper's MultiBench protocol (its Table 1): linear-probe accuracy over lambda and seeds."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._probing import fit_and_probe, grid, mean_over_seeds, run_specs

MULTIBENCH_OBJECTIVES = ("indiseek", "factorcl", "infodisen", "clip")


def _one_run(spec: dict) -> dict:
    import torch

    from indiseek.data import read_multibench

    torch.set_num_threads(spec["threads"])
    mdata = read_multibench(spec["path"], spec["dataset"], task=spec["task"])
    result = fit_and_probe(
        mdata,
        ["label"],
        objective=spec["objective"],
        lam=spec["lam"],
        seed=spec["seed"],
        encoder=spec["encoder"],
        max_epochs_specific=spec["max_epochs_specific"],
    )
    return {k: v for k, v in spec.items() if k not in ("path", "threads")} | {
        "seconds": result["seconds"],
        "accuracy": result["label"],
    }


def run_multibench(
    path: str,
    dataset: str,
    objectives: Sequence[str] = MULTIBENCH_OBJECTIVES,
    lams: Sequence[float] = tuple(10.0**j for j in range(-3, 4)),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    encoder: str = "transformer",
    task: int = 7,
    max_epochs_specific: int | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    r"""Linear-probe test accuracy of each objective on a MultiBench file, over :math:`\lambda` and seeds.

    The file is read with :func:`indiseek.data.read_multibench` (its train/valid/test split); each run fits
    :func:`indiseek.tl.fit` on the training samples and probes ``X_indiseek`` (:math:`(C_1, Z_1, C_2, Z_2)`; for
    CLIP-only :math:`(C_1, C_2)`) on the test samples with :func:`~indiseek.tl.probe_accuracy`.

    Parameters
    ----------
    path
        The MultiBench file (e.g. ``mosi_data.pkl`` or ``im.pk``).
    dataset
        Its dataset name (see :func:`~indiseek.data.read_multibench`).
    objectives, lams, seeds
        The grid (``"clip"`` runs once per seed).
    encoder
        Encoder of the sequence modalities (the paper's is the Transformer).
    task
        MIMIC label (ICD-9 group; the paper uses 7).
    max_epochs_specific
        Stage-2 epochs (``None``: the model's default).
    jobs
        Runs in parallel.

    Returns
    -------
    One row per run with ``accuracy`` and ``seconds``.

    Examples
    --------
    >>> import pickle, tempfile, numpy as np
    >>> from indiseek.benchmarks.multibench import run_multibench
    >>> rng = np.random.default_rng(0)
    >>> data = {
    ...     "adm_features_all": rng.normal(size=(300, 5)),
    ...     "ep_tdata": rng.normal(size=(300, 24, 12)),
    ...     "y_icd9": rng.integers(2, size=(300, 20)),
    ... }
    >>> path = tempfile.mkdtemp() + "/im.pk"
    >>> pickle.dump(data, open(path, "wb"))
    >>> runs = run_multibench(path, "mimic", ["clip"], seeds=[0], encoder="mlp")
    >>> runs[["dataset", "objective"]].values.tolist()
    [['mimic', 'clip']]
    """
    base = {"path": str(path), "dataset": dataset, "encoder": encoder, "task": task}
    specs = [
        {**base, "objective": o, "lam": lam, "seed": seed, "max_epochs_specific": max_epochs_specific}
        for (o, lam), seed in itertools.product(grid(objectives, lams), seeds)
    ]
    return pd.DataFrame(run_specs(_one_run, specs, jobs))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error of the accuracy over seeds, per dataset, objective and lambda.

    Examples
    --------
    >>> import pandas as pd
    >>> from indiseek.benchmarks.multibench import summarise
    >>> runs = pd.DataFrame(
    ...     {
    ...         "dataset": ["mosi"] * 2,
    ...         "objective": ["indiseek"] * 2,
    ...         "lam": [1.0, 1.0],
    ...         "seed": [0, 1],
    ...         "accuracy": [0.6, 0.7],
    ...     }
    ... )
    >>> summarise(runs)[["accuracy", "accuracy_se"]].values.round(3).tolist()
    [[0.65, 0.05]]
    """
    return mean_over_seeds(runs, ["dataset", "objective", "lam"], ["accuracy"])


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (accuracy in %, mean ± standard error)."""
    lines = ["| dataset | objective | λ | accuracy | seeds |", "|---|---|---|---|---|"]
    for _, row in summary.iterrows():
        lam = "" if np.isnan(row["lam"]) else f"{row['lam']:g}"
        se = "" if np.isnan(row["accuracy_se"]) else f" ± {100 * row['accuracy_se']:.1f}"
        lines.append(
            f"| {row['dataset']} | {row['objective']} | {lam} | {100 * row['accuracy']:.1f}{se} | {row['n_seeds']} |"
        )
    return "\n".join(lines)


def plot_summary(summary: pd.DataFrame, path=None):
    """Accuracy against lambda per objective (CLIP-only as a horizontal line)."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(4.5, 3.2))
    for objective, part in summary.groupby("objective", sort=True):
        if part["lam"].isna().all():
            axis.axhline(part["accuracy"].iloc[0], color="grey", linestyle="--", label=objective)
        else:
            axis.errorbar(
                part["lam"], part["accuracy"], yerr=part["accuracy_se"].fillna(0), marker="o", label=objective
            )
    axis.set_xscale("log")
    axis.set_xlabel("λ")
    axis.set_ylabel("linear-probe test accuracy")
    axis.set_title(", ".join(summary["dataset"].unique()))
    axis.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
