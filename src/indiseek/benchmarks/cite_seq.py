"""The paper's CITE-seq study: theta's rank agreement with WNN weights, and clustering, over lambda and seeds."""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
from mudata import MuData

STUDY_OBJECTIVES = ("indiseek", "factorcl", "infodisen")
STUDY_LAMS = tuple(10.0**j for j in range(-3, 4))


def _split(n_obs: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    cells = np.random.default_rng(seed).permutation(n_obs)
    n_train = int(round(train_fraction * n_obs))
    return np.sort(cells[:n_train]), np.sort(cells[n_train:])


def _rho(
    mdata: MuData, cells: np.ndarray, groupby: str, weight_key: str, use_rep, min_cells: int, truth_key=None
) -> dict:
    """Spearman rho of per-label mean theta (on ``cells``) against the mean WNN RNA weight (and ``truth_key``)."""
    from indiseek.tl import rank_agreement, theta_score

    part = mdata[cells].copy()
    theta_score(part, groupby, use_rep=use_rep)
    rank_agreement(part, groupby, weight_key=weight_key, min_cells=min_cells)
    result = part.uns["indiseek_rank_agreement"]
    scores = {"rho": result["rho"], "pvalue": result["pvalue"], "n_labels": result["n_labels"]}
    if truth_key is not None:
        rank_agreement(part, groupby, weight_key=truth_key, min_cells=min_cells)
        scores["rho_truth"] = part.uns["indiseek_rank_agreement"]["rho"]
    return scores


def prepare_reference(mdata: MuData, *, seed: int = 0) -> tuple[str, str]:
    """Prepare ``mdata`` (if needed) and add WNN weights from all cells; return the (RNA, protein) names."""
    from indiseek._constants import PREPARE_KEY
    from indiseek.pp import prepare
    from indiseek.tl import wnn_weights

    if PREPARE_KEY not in mdata.uns:
        prepare(mdata, seed=seed)
    record = mdata.uns[PREPARE_KEY]
    rna, prot = str(record["rna"]), str(record["prot"])
    if f"{rna}:mod_weight" not in mdata.obs:
        wnn_weights(mdata)
    mdata.obsm["X_raw_rna"] = np.asarray(mdata.mod[rna].obsm["X_pca"])
    mdata.obsm["X_raw_prot"] = np.asarray(mdata.mod[prot].layers["clr"])
    return rna, prot


def run_cite_seq(
    mdata: MuData | str | Path,
    *,
    objectives: Sequence[str] = STUDY_OBJECTIVES,
    lams: Sequence[float] = STUDY_LAMS,
    seeds: Sequence[int] = (0, 1, 2),
    groupby: str = "cell_type",
    train_fraction: float = 0.5,
    min_cells: int = 5,
    truth_key: str | None = None,
    **fit_kwargs,
) -> pd.DataFrame:
    r"""Rank agreement (:math:`\rho`) and clustering for each objective, :math:`\lambda` and seed, plus references.

    The paper's protocol: the networks train on a random ``train_fraction`` of the cells (per seed); :math:`\theta`
    is computed on the other cells with their held-out embeddings, and its per-label means are ranked against the
    per-label mean WNN RNA weight (muon, computed once on all cells). k-means ARI/NMI (k = number of labels) is
    measured on all cells. Reference rows (``objective="raw"``) compute :math:`\theta` on the raw
    representations, RNA principal components and protein CLR, on the same held-out cells.

    Parameters
    ----------
    mdata
        MuData with ``rna`` and ``prot``/``adt`` raw counts and ``obs[groupby]``, or a path to one.
    objectives, lams, seeds
        The grid (``"clip"`` gives ARI/NMI only).
    groupby
        Label column.
    train_fraction
        Share of cells that train the networks.
    min_cells
        Labels with fewer held-out cells are left out of :math:`\rho`.
    truth_key
        Optional numeric ``.obs`` column with the expected sign of :math:`\theta` per cell (known on simulated data, see
        :func:`~indiseek.datasets.add_expected_theta_sign`); the per-label means of :math:`\theta` are then also ranked
        against it (``rho_truth``).
    **fit_kwargs
        Passed to :func:`indiseek.tl.fit`.

    Returns
    -------
    One row per run: ``objective``, ``lam``, ``seed``, ``rho``, ``pvalue``, ``n_labels``, ``seconds``,
    ``ari_<rep>``/``nmi_<rep>`` per representation, and ``rho_truth`` when ``truth_key`` is given.

    Examples
    --------
    >>> from indiseek.benchmarks.cite_seq import run_cite_seq
    >>> runs = run_cite_seq("../shared/data/bmmc_cite_600.h5mu", lams=[10.0], seeds=[0])  # doctest: +SKIP
    """
    from indiseek.tl import cluster_agreement, fit

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    base = md.read_h5mu(mdata) if isinstance(mdata, str | Path) else mdata.copy()
    rna, prot = prepare_reference(base)
    weight_key = f"{rna}:mod_weight"
    rows = []
    for seed in seeds:
        train, held_out = _split(base.n_obs, train_fraction, seed)
        raw = _rho(base, held_out, groupby, weight_key, ("X_raw_rna", "X_raw_prot"), min_cells, truth_key)
        rows.append({"objective": "raw", "lam": np.nan, "seed": seed, **raw, "seconds": 0.0})
    for objective, lam, seed in itertools.product(objectives, lams, seeds):
        train, held_out = _split(base.n_obs, train_fraction, seed)
        run = base.copy()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit(
                run,
                objective=objective,
                lam=lam,
                train_indices=train,
                seed=seed,
                enable_progress_bar=False,
                **fit_kwargs,
            )
        row = {"objective": objective, "lam": lam, "seed": seed, "seconds": round(time.perf_counter() - start, 1)}
        if model.module.has_specific:
            row.update(_rho(run, held_out, groupby, weight_key, None, min_cells, truth_key))
        cluster_agreement(run, groupby, seed=seed)
        for rep, scores in run.uns["indiseek_cluster_agreement"].iterrows():
            short = rep.removeprefix("X_indiseek").strip("_") or "joint"
            row[f"ari_{short}"], row[f"nmi_{short}"] = scores["ari"], scores["nmi"]
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every score, per objective and lambda.

    Examples
    --------
    >>> import pandas as pd
    >>> from indiseek.benchmarks.cite_seq import summarise
    >>> runs = pd.DataFrame({"objective": ["indiseek"] * 2, "lam": [1.0, 1.0], "seed": [0, 1], "rho": [0.5, 0.7]})
    >>> summarise(runs)[["rho", "rho_sd"]].round(3).values.tolist()
    [[0.6, 0.141]]
    """
    scores = [c for c in runs if c not in ("objective", "lam", "seed")]
    grouped = runs.fillna({"lam": -1.0}).groupby(["objective", "lam"], sort=True)
    mean = grouped[scores].mean()
    sd = grouped[scores].std().add_suffix("_sd")
    table = pd.concat([mean, sd], axis=1).reset_index()
    table["lam"] = table["lam"].replace(-1.0, np.nan)
    return table


def plot_rho(summary: pd.DataFrame, path: str | Path | None = None):
    """Rho against lambda per objective, with the raw-representation reference (the paper's Figure 5)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for objective, part in summary[summary["objective"] != "raw"].groupby("objective"):
        if part["rho"].notna().any():
            ax.errorbar(part["lam"], part["rho"], yerr=part["rho_sd"], marker="o", capsize=2, label=objective)
    raw = summary[summary["objective"] == "raw"]
    if len(raw):
        ax.axhline(float(raw["rho"].iloc[0]), color="grey", linestyle="--", label="raw PCs / CLR")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel(r"Spearman $\rho$ (mean $\theta$ vs WNN RNA weight)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table: rho and the joint representation's ARI/NMI, mean ± sd over seeds."""

    def cell(row, key):
        if key not in row or pd.isna(row[key]):
            return "–"
        sd = row.get(f"{key}_sd")
        return f"{row[key]:.3f}" + ("" if sd is None or pd.isna(sd) else f" ± {sd:.3f}")

    truth = "rho_truth" in summary
    header = ["objective", "λ", "ρ", *(["ρ vs truth"] if truth else []), "ARI (joint)", "NMI (joint)", "s / fit"]
    keys = ["rho", *(["rho_truth"] if truth else []), "ari_joint", "nmi_joint"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in summary.iterrows():
        lam = "–" if pd.isna(row["lam"]) else f"{row['lam']:g}"
        cells = [row["objective"], lam, *(cell(row, key) for key in keys)]
        lines.append("| " + " | ".join([*cells, f"{row['seconds']:.0f}"]) + " |")
    return "\n".join(lines)
