"""A simulated CITE-seq data set with known shared and modality-specific latent factors."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData

#: Lineage centres in the first two shared dimensions.
_LINEAGE_CENTRES = np.array([[3.0, 0.0], [-1.5, 2.6], [-1.5, -2.6]])
#: Centres of the three states of each discrete factor (sub-lineage, RNA state, protein state).
_STATE_CENTRES = np.array([[2.0, 0.0], [-1.0, 1.73], [-1.0, -1.73]])
_DISTINGUISHED_BY = ("shared", "rna", "prot")


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray | float) -> np.ndarray:
    """Counts with the given mean and inverse dispersion (variance ``mean + mean^2 / dispersion``)."""
    return rng.poisson(rng.gamma(shape=dispersion, scale=mean / dispersion))


def _latent_factors(rng: np.random.Generator, n_cells: int):
    """Lineages, discrete states (sub-lineage, RNA state, protein state; independent) and the three factor groups."""
    lineage = rng.integers(0, 3, n_cells)
    states = rng.integers(0, 3, (n_cells, 3))
    shared = np.concatenate(
        [_LINEAGE_CENTRES[lineage], np.where(lineage[:, None] == 0, _STATE_CENTRES[states[:, 0]], 0.0)], axis=1
    ) + rng.normal(0.0, 0.5, (n_cells, 4))
    rna_specific = np.concatenate([_STATE_CENTRES[states[:, 1]], np.zeros((n_cells, 1))], axis=1) + rng.normal(
        0.0, 0.5, (n_cells, 3)
    )
    prot_specific = np.concatenate([_STATE_CENTRES[states[:, 2]], np.zeros((n_cells, 1))], axis=1) + rng.normal(
        0.0, 0.5, (n_cells, 3)
    )
    return lineage, states, shared, rna_specific, prot_specific


def _rna_counts(
    rng: np.random.Generator, shared: np.ndarray, rna_specific: np.ndarray, n_genes: int, batch: dict | None = None
) -> np.ndarray:
    """Log-linear in (shared, RNA-specific) with sparse loadings; NB counts with log-normal library sizes.

    ``batch`` (from :func:`_batch_effects`) adds each cell's batch log-fold changes and library-size factor.
    """
    n_cells = len(shared)
    load_shared = rng.normal(0, 0.5, (4, n_genes)) * (rng.random((4, n_genes)) < 0.2)
    load_rna = rng.normal(0, 0.5, (3, n_genes)) * (rng.random((3, n_genes)) < 0.2)
    log_rate = rng.normal(0, 1, n_genes) + shared @ load_shared + rna_specific @ load_rna
    if batch is not None:
        log_rate = log_rate + batch["rna_log_fold"][batch["codes"]]
    proportions = np.exp(log_rate - log_rate.max(axis=1, keepdims=True))
    proportions /= proportions.sum(axis=1, keepdims=True)
    library = rng.lognormal(np.log(3000), 0.3, n_cells)
    if batch is not None:
        library = library * batch["rna_library"][batch["codes"]]
    return _negative_binomial(rng, library[:, None] * proportions, rng.uniform(2, 10, n_genes))


def _protein_counts(
    rng: np.random.Generator, shared: np.ndarray, prot_specific: np.ndarray, n_proteins: int, batch: dict | None = None
) -> np.ndarray:
    """NB foreground log-linear in (shared, protein-specific) plus an ambient background per cell.

    ``batch`` (from :func:`_batch_effects`) adds each cell's batch log-fold changes of the foreground and scales its
    background.
    """
    n_cells = len(shared)
    load_shared_p = rng.normal(0, 0.5, (4, n_proteins)) * (rng.random((4, n_proteins)) < 0.5)
    load_prot = rng.normal(0, 0.6, (3, n_proteins)) * (rng.random((3, n_proteins)) < 0.5)
    log_foreground = rng.normal(3.5, 0.5, n_proteins) + shared @ load_shared_p + prot_specific @ load_prot
    if batch is not None:
        log_foreground = log_foreground + batch["prot_log_fold"][batch["codes"]]
    foreground = np.exp(log_foreground)
    background = rng.lognormal(np.log(10), 0.4, (n_cells, 1)) * rng.uniform(0.5, 1.5, n_proteins)
    if batch is not None:
        background = background * batch["prot_background"][batch["codes"]][:, None]
    return _negative_binomial(rng, foreground + background, 10.0)


def _batch_effects(n_cells: int, n_genes: int, n_proteins: int, n_batches: int, size: float, seed: int) -> dict:
    """Batches drawn independently of everything else, and their effects; from a stream of their own.

    Per batch: RNA log-fold changes (normal, sd ``0.4 * size``, every gene) and a library-size factor (log-normal,
    sd ``0.3 * size``); protein foreground log-fold changes (sd ``0.3 * size``) and a background factor (log-normal,
    sd ``0.5 * size``). Drawn after the data's own stream, so the cell factors and counts' other parts are those of
    the same seed without batches.
    """
    rng = np.random.default_rng([seed, 1])
    return {
        "codes": rng.integers(0, n_batches, n_cells),
        "rna_log_fold": rng.normal(0, 0.4 * size, (n_batches, n_genes)),
        "rna_library": rng.lognormal(0, 0.3 * size, n_batches),
        "prot_log_fold": rng.normal(0, 0.3 * size, (n_batches, n_proteins)),
        "prot_background": rng.lognormal(0, 0.5 * size, n_batches),
    }


def _cell_types(lineage: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    """Fine and coarse types, and the factor group that splits each fine type from its siblings."""
    lineage_names = np.array(["A", "B", "C"])
    fine_state = states[np.arange(len(lineage)), lineage]  # the state that splits each lineage
    cell_type = np.char.add(lineage_names[lineage], (fine_state + 1).astype(str))
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical(cell_type, categories=[f"{a}{k}" for a in "ABC" for k in (1, 2, 3)]),
            "cell_type_coarse": pd.Categorical(lineage_names[lineage], categories=list(lineage_names)),
            "distinguished_by": pd.Categorical(np.array(_DISTINGUISHED_BY)[lineage], categories=_DISTINGUISHED_BY),
        },
        index=pd.Index([f"cell{i:06d}" for i in range(len(lineage))]),
    )


def _as_mudata(rna_counts: np.ndarray, prot_counts: np.ndarray, obs: pd.DataFrame) -> MuData:
    obs_names = obs.index
    rna = ad.AnnData(
        sp.csr_matrix(rna_counts.astype(np.float32)),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(index=[f"gene{j:04d}" for j in range(rna_counts.shape[1])]),
    )
    prot = ad.AnnData(
        prot_counts.astype(np.float32),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(index=[f"protein{j:02d}" for j in range(prot_counts.shape[1])]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        mdata = MuData({"rna": rna, "prot": prot})
    for column in obs:
        mdata.obs[column] = obs[column]
    return mdata


def simulated_cite(
    n_cells: int = 5000,
    *,
    n_genes: int = 2000,
    n_proteins: int = 25,
    n_batches: int = 1,
    batch_effect: float = 1.0,
    seed: int = 0,
) -> MuData:
    """Simulate paired RNA and surface-protein counts driven by known shared and modality-specific factors.

    Three independent groups of latent factors drive the data:

    * **shared** (4 dimensions): a lineage (3 lineages, in dimensions 1-2), a sub-lineage (dimensions 3-4) and
      continuous variation; they move both RNA and protein;
    * **RNA-specific** (3 dimensions): one of three discrete RNA states plus continuous variation; RNA only;
    * **protein-specific** (3 dimensions): one of three protein states plus continuous variation; protein only.

    The discrete states are drawn independently of each other, so the three groups are statistically independent.
    The nine fine cell types are defined so that each lineage is split by a different group: lineage ``A`` into
    ``A1``-``A3`` by its shared sub-lineage, ``B`` into ``B1``-``B3`` by the RNA state, ``C`` into ``C1``-``C3`` by
    the protein state. RNA counts are negative binomial with log-linear means in the shared and RNA-specific
    factors and log-normal library sizes; protein counts are a negative-binomial foreground in the shared and
    protein-specific factors plus a per-cell ambient background.

    With ``n_batches > 1`` every cell also belongs to a batch, drawn independently of the factors: each batch shifts
    the RNA log-means of every gene and the library sizes, and the protein foreground and ambient background, by
    known amounts (the truth is kept in ``uns["simulation"]["batch_effects"]``).

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes.
    n_proteins
        Number of surface proteins.
    n_batches
        Number of batches (1: none).
    batch_effect
        Size of the batch effects, a factor on their standard deviations (RNA log-fold changes 0.4, library sizes
        0.3, protein log-fold changes 0.3, protein background 0.5 on the log scale).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    MuData
        MuData with modalities ``"rna"`` and ``"prot"`` holding raw counts in ``.X`` (RNA sparse CSR, protein dense,
        both ``float32``), and the ground truth at the top level:

        * ``obs["cell_type"]``: fine type (``A1`` ... ``C3``); ``obs["cell_type_coarse"]``: lineage (``A``, ``B``,
          ``C``);
        * ``obs["distinguished_by"]``: which factor group separates the fine type from its siblings
          (``"shared"``, ``"rna"`` or ``"prot"``);
        * ``obsm["latent_shared"]`` (4 columns), ``obsm["latent_rna"]`` (3), ``obsm["latent_prot"]`` (3);
        * ``uns["simulation"]``: the parameters;
        * with ``n_batches > 1``: ``obs["batch"]`` (``batch0``, ``batch1``, ...) and
          ``uns["simulation"]["batch_effects"]``: per batch, ``rna_log_fold`` (batches x genes), ``rna_library``,
          ``prot_log_fold`` (batches x proteins) and ``prot_background``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=500, n_genes=300, seed=0)
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((500, 300), (500, 25))
    >>> sorted(mdata.obs["distinguished_by"].unique())
    ['prot', 'rna', 'shared']
    >>> batched = isk.datasets.simulated_cite(n_cells=500, n_genes=300, n_batches=3, seed=0)
    >>> batched.obs["batch"].value_counts().sort_index().index.tolist()
    ['batch0', 'batch1', 'batch2']
    """
    if n_cells < 9:
        raise ValueError(f"`n_cells` must be at least 9 (one per cell type), got {n_cells}.")
    if n_genes < 10 or n_proteins < 3:
        raise ValueError(f"Need at least 10 genes and 3 proteins, got {n_genes} and {n_proteins}.")
    if isinstance(n_batches, bool) or not isinstance(n_batches, int | np.integer) or not 1 <= n_batches <= n_cells:
        raise ValueError(f"`n_batches` must be an integer between 1 and `n_cells`, got {n_batches!r}.")
    if not (np.isfinite(batch_effect) and batch_effect >= 0):
        raise ValueError(f"`batch_effect` must be a non-negative number, got {batch_effect!r}.")
    rng = np.random.default_rng(seed)
    batch = None if n_batches == 1 else _batch_effects(n_cells, n_genes, n_proteins, n_batches, batch_effect, seed)
    lineage, states, shared, rna_specific, prot_specific = _latent_factors(rng, n_cells)
    rna_counts = _rna_counts(rng, shared, rna_specific, n_genes, batch)
    prot_counts = _protein_counts(rng, shared, prot_specific, n_proteins, batch)
    obs = _cell_types(lineage, states)
    if batch is not None:
        names = [f"batch{k}" for k in range(n_batches)]
        obs["batch"] = pd.Categorical(np.array(names)[batch["codes"]], categories=names)
    mdata = _as_mudata(rna_counts, prot_counts, obs)
    mdata.obsm["latent_shared"] = shared.astype(np.float32)
    mdata.obsm["latent_rna"] = rna_specific.astype(np.float32)
    mdata.obsm["latent_prot"] = prot_specific.astype(np.float32)
    mdata.uns["simulation"] = {"n_cells": n_cells, "n_genes": n_genes, "n_proteins": n_proteins, "seed": seed}
    if batch is not None:
        mdata.uns["simulation"].update(n_batches=n_batches, batch_effect=float(batch_effect))
        mdata.uns["simulation"]["batch_effects"] = {k: v for k, v in batch.items() if k != "codes"}
    return mdata


#: ``obs`` column of :func:`add_expected_theta_sign`.
EXPECTED_SIGN_KEY = "expected_theta_sign"


def add_expected_theta_sign(mdata: MuData, *, key_added: str = EXPECTED_SIGN_KEY) -> str:
    r"""Write the sign :math:`\theta` should have on :func:`~indiseek.datasets.simulated_cite` data to ``obs``.

    +1 for cells of types split from their siblings only by RNA-specific factors, -1 for those split only by
    protein-specific factors, 0 for those split by shared factors (from ``obs["distinguished_by"]``). Pass the key
    as ``truth_key`` to the CITE-seq study (``indiseek benchmark cite-seq``).

    Parameters
    ----------
    mdata
        Simulated MuData with ``obs["distinguished_by"]``.
    key_added
        Name of the new ``obs`` column.

    Returns
    -------
    ``key_added``; ``mdata.obs[key_added]`` is set (float).

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> key = isk.datasets.add_expected_theta_sign(mdata)
    >>> sorted(mdata.obs[key].unique().tolist())
    [-1.0, 0.0, 1.0]
    """
    if "distinguished_by" not in mdata.obs:
        raise KeyError(
            "obs['distinguished_by'] is missing: the expected sign of theta is known only for data from "
            "indiseek.datasets.simulated_cite."
        )
    sign = {"rna": 1.0, "prot": -1.0, "shared": 0.0}
    mdata.obs[key_added] = mdata.obs["distinguished_by"].astype(str).map(sign).astype(float)
    return key_added
