"""An offline tensor benchmark with known ground truth: which labels a representation makes linearly readable."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from mudata import MuData

from ._probing import fit_and_probe, grid, mean_over_seeds, run_specs

#: The labels of the benchmark: one driven by the shared latent block, one by each specific block.
LABELS = ("shared", "specific1", "specific2")
TENSOR_OBJECTIVES = ("indiseek", "factorcl", "infodisen", "clip")
TENSOR_LAMS = (1.0, 10.0, 100.0)
_SPLIT = {"train": 0.7, "valid": 0.1, "test": 0.2}


def _mix(latent: np.ndarray, n_out: int, nonlinear: bool, rng: np.random.Generator) -> np.ndarray:
    """A random map of the latents to ``n_out`` features: linear, or a random 2-layer tanh network."""
    n_in = latent.shape[1]
    if not nonlinear:
        return latent @ rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
    hidden = np.tanh(latent @ rng.normal(size=(n_in, 4 * n_out)) * 1.5 / np.sqrt(n_in))
    return hidden @ rng.normal(size=(4 * n_out, n_out)) / np.sqrt(4 * n_out)


def tensor_benchmark_data(
    n: int = 3_000,
    *,
    mixing: Literal["linear", "nonlinear"] = "linear",
    layout: Literal["flat", "sequence"] = "flat",
    n_latent: int = 4,
    n_features: int = 20,
    n_steps: int = 8,
    noise: float = 0.1,
    seed: int = 0,
) -> MuData:
    r"""Two paired modalities with a known shared block and one specific block each, and one label per block.

    Latent blocks :math:`s` (shared), :math:`u_1`, :math:`u_2` (specific) are drawn from :math:`N(0, I)` with
    ``n_latent`` coordinates each. Modality :math:`i` is a random map of :math:`(s, u_i)` (``"linear"``, or
    ``"nonlinear"``: a random 2-layer tanh network) to ``n_features`` features plus Gaussian noise. With
    ``layout="sequence"`` each modality is a sequence of ``n_steps`` steps, each step its own random map of the
    latents, and each sample's length is drawn uniformly from ``n_steps // 2`` to ``n_steps`` (end padding with
    zeros). The labels are ``obs["shared"]`` :math:`= 1\{s_1 + s_2 > 0\}`, ``obs["specific1"]`` (the same on
    :math:`u_1`) and ``obs["specific2"]`` (on :math:`u_2`): the shared label is readable from either modality, each
    specific label from its own modality only. ``obs["split"]`` holds a 70/10/20 train/valid/test split.

    Parameters
    ----------
    n
        Samples.
    mixing
        ``"linear"`` or ``"nonlinear"`` maps from latents to features.
    layout
        ``"flat"`` (``(n, n_features)`` arrays) or ``"sequence"`` (``(n, n_steps, n_features)``).
    n_latent
        Coordinates per latent block.
    n_features
        Features per modality (per time step for sequences).
    n_steps
        Time steps of the sequence layout.
    noise
        Standard deviation of the additive noise.
    seed
        Seed of the latents, maps, noise, lengths and split.

    Returns
    -------
    MuData from :func:`indiseek.data.from_arrays` with modalities ``"x1"``, ``"x2"``; the latent blocks are in
    ``uns["latents"]``.

    Examples
    --------
    >>> from indiseek.benchmarks.tensors import tensor_benchmark_data
    >>> mdata = tensor_benchmark_data(200, layout="sequence", seed=0)
    >>> mdata["x1"].shape, [c for c in ("shared", "specific1", "specific2", "split") if c in mdata.obs]
    ((200, 160), ['shared', 'specific1', 'specific2', 'split'])
    """
    from indiseek.data import from_arrays
    from indiseek.data._arrays import step_indicators

    if mixing not in ("linear", "nonlinear") or layout not in ("flat", "sequence"):
        raise ValueError(
            f'`mixing` must be "linear"/"nonlinear" and `layout` "flat"/"sequence"; got {mixing}, {layout}.'
        )
    rng = np.random.default_rng(seed)
    blocks = {name: rng.normal(size=(n, n_latent)) for name in ("s", "u1", "u2")}
    nonlinear = mixing == "nonlinear"
    arrays, lengths = [], []
    for i in (1, 2):
        latent = np.hstack([blocks["s"], blocks[f"u{i}"]])
        if layout == "flat":
            x = _mix(latent, n_features, nonlinear, rng)
            x += noise * rng.normal(size=x.shape)
            arrays.append(x)
            lengths.append(None)
        else:
            x = np.stack([_mix(latent, n_features, nonlinear, rng) for _ in range(n_steps)], axis=1)
            x += noise * rng.normal(size=x.shape)
            length = rng.integers(n_steps // 2, n_steps + 1, size=n)
            arrays.append(x * step_indicators(length, n_steps, "end")[:, :, None])
            lengths.append(length)
    labels = {name: (blocks[key][:, :2].sum(axis=1) > 0).astype(int) for name, key in zip(LABELS, blocks, strict=True)}
    split = rng.choice(list(_SPLIT), size=n, p=list(_SPLIT.values()))
    mdata = from_arrays(*arrays, labels=labels, lengths=lengths, split=split)
    mdata.uns["latents"] = blocks
    return mdata


def _one_run(spec: dict) -> dict:
    """Fit one objective on one benchmark variant and probe its representation (runs in a worker process)."""
    import torch

    torch.set_num_threads(spec["threads"])
    mdata = tensor_benchmark_data(spec["n"], mixing=spec["mixing"], layout=spec["layout"], seed=spec["seed"])
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
        max_epochs_specific=spec["max_epochs_specific"],
    )
    return {k: v for k, v in spec.items() if k not in ("n", "threads")} | result


def _raw_row(spec: dict) -> dict:
    """The probe on the raw inputs (both modalities concatenated): the ceiling for a complete representation."""
    from indiseek.tl import probe_accuracy

    mdata = tensor_benchmark_data(spec["n"], mixing=spec["mixing"], layout=spec["layout"], seed=spec["seed"])
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
    r"""Linear-probe accuracy of each objective's representation on :func:`tensor_benchmark_data`, with references.

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
        Network width and depth, and the dimension of each shared and specific representation.
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
