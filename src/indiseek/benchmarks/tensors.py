"""An offline tensor benchmark with known ground truth: which labels a representation makes linearly readable."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from indiseek.datasets import TENSOR_LABELS as LABELS
from indiseek.datasets import paired_tensors

from ._probing import fit_and_probe, grid, mean_over_seeds, run_specs

#: The labels of the benchmark: one driven by the shared latent block, one by each specific block.
TENSOR_OBJECTIVES = ("indiseek", "factorcl", "infodisen", "clip")
TENSOR_LAMS = (1.0, 10.0, 100.0)


def _one_run(spec: dict) -> dict:
    """Fit one objective on one benchmark variant and probe its representation (runs in a worker process)."""
    import torch

    torch.set_num_threads(spec["threads"])
    mdata = paired_tensors(spec["n"], mixing=spec["mixing"], layout=spec["layout"], seed=spec["seed"])
    size = spec["n_latent_dims"]
    result = fit_and_probe(
        mdata,
        LABELS,
        objective=spec["objective"],
        lam=spec["lam"],
        seed=spec["seed"],
        encoder=spec["encoder"],
        n_hidden=spec["n_hidden"],
        n_layers=spec["n_layers"],
        n_shared=size,
        n_specific=size,
        input_dropout=0.0,
        max_epochs_specific=spec["max_epochs_specific"],
    )
    return {k: v for k, v in spec.items() if k not in ("n", "threads")} | result


def _raw_row(spec: dict) -> dict:
    """The probe on the raw inputs (both modalities concatenated): the ceiling for a complete representation."""
    from indiseek.tl import probe_accuracy

    mdata = paired_tensors(spec["n"], mixing=spec["mixing"], layout=spec["layout"], seed=spec["seed"])
    split = mdata.obs["split"].to_numpy()
    inputs = np.hstack([mdata.mod[m].X for m in mdata.mod])
    row = {k: spec[k] for k in ("mixing", "layout", "seed")} | {"objective": "raw inputs", "lam": np.nan}
    for label in LABELS:
        row[label] = probe_accuracy(inputs, mdata.obs[label].to_numpy(), split == "train", split == "test")
    return row


def run_tensors(
    mixings: Sequence[str] = ("linear", "nonlinear"),
    layouts: Sequence[str] = ("flat", "sequence"),
    objectives: Sequence[str] = TENSOR_OBJECTIVES,
    lams: Sequence[float] = TENSOR_LAMS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    n: int = 3_000,
    encoder: str = "mlp",
    n_hidden: int = 64,
    n_layers: int = 3,
    n_latent_dims: int = 16,
    max_epochs_specific: int | None = 40,
    jobs: int = 1,
) -> pd.DataFrame:
    r"""Linear-probe accuracy of each objective's representation on paired tensors, with references.

    Each run fits :func:`indiseek.tl.fit` on the training split (validation split inside it; the same networks,
    optimiser and schedule for every objective) and probes the joint representation ``X_indiseek`` (for
    ``"clip"``: :math:`(C_1, C_2)`) for each label with :func:`~indiseek.tl.probe_accuracy`. ``"clip"`` has no
    :math:`\lambda` and runs once per variant and seed. A row per variant and seed probes the raw inputs.

    Parameters
    ----------
    mixings, layouts, objectives, lams, seeds
        The grid.
    n
        Samples per data set.
    encoder
        Encoder of the sequence layout: ``"mlp"`` (the default, cheap on a CPU) or ``"transformer"``.
    n_hidden, n_layers, n_latent_dims
        Network width and depth, and the dimension of each shared and specific representation. Every objective
        trains on whole inputs (``input_dropout=0``, as in the paper): on these arrays, masking the inputs in stage 1
        leaves CLIP's features holding more of the specific labels.
    max_epochs_specific
        Stage-2 epochs (40: about 650 encoder steps on 2,100 training samples; ``None``: the model's default of
        4,000 steps).
    jobs
        Runs in parallel (worker processes; the threads are split between them).

    Returns
    -------
    One row per run: the grid values, ``seconds`` of training and the test accuracy per label.

    Examples
    --------
    >>> from indiseek.benchmarks.tensors import run_tensors
    >>> runs = run_tensors(["linear"], ["flat"], ["clip"], [1.0], [0], n=400, max_epochs_specific=1)
    >>> runs["objective"].tolist()
    ['clip', 'raw inputs']
    """
    base = {
        "n": n,
        "encoder": encoder,
        "n_hidden": n_hidden,
        "n_layers": n_layers,
        "n_latent_dims": n_latent_dims,
        "max_epochs_specific": max_epochs_specific,
    }
    specs = [
        {**base, "mixing": mixing, "layout": layout, "objective": objective, "lam": lam, "seed": seed}
        for mixing, layout, (objective, lam), seed in itertools.product(mixings, layouts, grid(objectives, lams), seeds)
    ]
    rows = run_specs(_one_run, specs, jobs)
    variants = itertools.product(mixings, layouts, seeds)
    raw = [_raw_row({**base, "mixing": m, "layout": lay, "seed": s}) for m, lay, s in variants]
    return pd.DataFrame(rows + raw)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds of each label's accuracy, per variant, objective and lambda.

    Examples
    --------
    >>> import pandas as pd
    >>> from indiseek.benchmarks.tensors import summarise
    >>> runs = pd.DataFrame(
    ...     {
    ...         "mixing": ["linear"] * 2,
    ...         "layout": ["flat"] * 2,
    ...         "objective": ["clip"] * 2,
    ...         "lam": [float("nan")] * 2,
    ...         "seed": [0, 1],
    ...         "shared": [0.9, 0.8],
    ...         "specific1": [0.5, 0.5],
    ...         "specific2": [0.6, 0.4],
    ...     }
    ... )
    >>> summarise(runs)[["shared", "shared_se", "specific2"]].values.round(3).tolist()
    [[0.85, 0.05, 0.5]]
    """
    return mean_over_seeds(runs, ["mixing", "layout", "objective", "lam"], LABELS)


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (accuracy in %, mean ± standard error over seeds)."""
    head = ["mixing", "layout", "objective", "λ", *LABELS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in summary.iterrows():
        cells = [row["mixing"], row["layout"], row["objective"], "" if np.isnan(row["lam"]) else f"{row['lam']:g}"]
        for label in LABELS:
            se = row[f"{label}_se"]
            cells.append(f"{100 * row[label]:.1f}" + ("" if np.isnan(se) else f" ± {100 * se:.1f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_summary(summary: pd.DataFrame, path=None):
    """Accuracy per label (bars) for each objective and lambda, one panel per mixing and layout."""
    import matplotlib.pyplot as plt

    variants = list(summary.groupby(["mixing", "layout"], sort=True))
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 3.4), sharey=True, squeeze=False)
    width = 0.8 / len(LABELS)
    for axis, ((mixing, layout), part) in zip(axes[0], variants, strict=True):
        names = [
            o if np.isnan(lam) else f"{o} λ={lam:g}" for o, lam in zip(part["objective"], part["lam"], strict=True)
        ]
        positions = np.arange(len(part))
        for k, label in enumerate(LABELS):
            axis.bar(positions + (k - 1) * width, part[label], width, yerr=part[f"{label}_se"].fillna(0), label=label)
        axis.set_xticks(positions, names, rotation=60, ha="right", fontsize=7)
        axis.set_ylim(0.4, 1.0)
        axis.set_title(f"{mixing}, {layout}")
    axes[0, 0].set_ylabel("linear-probe test accuracy")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(LABELS), fontsize=8, title="label")
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
