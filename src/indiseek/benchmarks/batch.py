"""Batch correction: IndiSeek and totalVI with and without a batch covariate, scored with scib-metrics."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData

METHODS = ("raw", "indiseek", "indiseek_batch", "totalvi", "totalvi_batch")
#: Column of the groups that stand in for cell types on data without labels.
PROTEIN_GROUPS_KEY = "protein_groups"
#: Representations of each IndiSeek run that are scored.
INDISEEK_REPRESENTATIONS = {
    "joint": "X_indiseek",
    "shared": "X_indiseek_shared_{x1}",
    "specific": "X_indiseek_specific_{x1}",
}


def protein_groups(mdata: MuData, prot: str, batch_key: str, *, seed: int = 0) -> np.ndarray:
    """Leiden groups of the cells' protein CLR after centring each batch (labels for data without cell types).

    Centring each protein within each batch removes the batches' background shifts (assuming similar cell-type
    make-up), so that the groups follow cell identity rather than batch.
    """
    import scanpy as sc

    clr = np.asarray(mdata.mod[prot].layers["clr"], dtype=np.float64).copy()
    batch = mdata.obs[batch_key].astype(str).to_numpy()
    for b in np.unique(batch):
        clr[batch == b] -= clr[batch == b].mean(axis=0)
    adata = AnnData(clr.astype(np.float32))
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X", random_state=seed)
    sc.tl.leiden(adata, resolution=1.0, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
    return adata.obs["leiden"].astype(str).to_numpy()


def _raw(mdata: MuData, rna: str, prot: str) -> np.ndarray:
    unit = lambda a: a / np.linalg.norm(a, axis=1).mean()
    pcs = np.asarray(mdata.mod[rna].obsm["X_pca"])[:, :50]
    return np.hstack([unit(pcs), unit(np.asarray(mdata.mod[prot].layers["clr"]))]).astype(np.float32)


def _indiseek(mdata: MuData, rna: str, batch_key: str | None, seed: int, fit_kwargs: dict) -> dict:
    from indiseek.tl import fit

    data = mdata.copy()
    with contextlib.redirect_stdout(io.StringIO()):
        fit(data, batch_key=batch_key, seed=seed, enable_progress_bar=False, **fit_kwargs)
    return {name: np.asarray(data.obsm[key.format(x1=rna)]) for name, key in INDISEEK_REPRESENTATIONS.items()}


def _totalvi(mdata: MuData, rna: str, prot: str, batch_key: str | None, seed: int) -> dict:
    import scanpy as sc
    import scvi

    counts = MuData({"rna": mdata.mod[rna].copy(), "prot": mdata.mod[prot].copy()})
    x = counts["prot"].X
    counts["prot"].X = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)
    if counts["rna"].n_vars > 4000:
        sc.pp.highly_variable_genes(counts["rna"], n_top_genes=4000, flavor="seurat_v3")
        counts.mod["rna"] = counts["rna"][:, counts["rna"].var["highly_variable"]].copy()
    if batch_key:
        counts["rna"].obs["batch"] = mdata.obs[batch_key].astype(str).to_numpy()
    counts.update()
    scvi.settings.seed = seed
    scvi.model.TOTALVI.setup_mudata(
        counts,
        modalities={"rna_layer": "rna", "protein_layer": "prot", **({"batch_key": "rna"} if batch_key else {})},
        batch_key="batch" if batch_key else None,
    )
    model = scvi.model.TOTALVI(counts)
    model.train(enable_progress_bar=False)
    return {"joint": np.asarray(model.get_latent_representation())}


def representations(mdata: MuData, method: str, *, batch_key: str, seed: int, fit_kwargs: dict) -> dict:
    """The representations of one method (``METHODS``) on ``mdata`` (prepared), by name."""
    from indiseek._constants import PREPARE_KEY

    rna, prot = (str(mdata.uns[PREPARE_KEY][k]) for k in ("rna", "prot"))
    if method == "raw":
        return {"joint": _raw(mdata, rna, prot)}
    if method.startswith("indiseek"):
        return _indiseek(mdata, rna, batch_key if method.endswith("_batch") else None, seed, fit_kwargs)
    if method.startswith("totalvi"):
        return _totalvi(mdata, rna, prot, batch_key if method.endswith("_batch") else None, seed)
    raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")


def scib_scores(
    embeddings: dict[str, np.ndarray], batch: np.ndarray, labels: np.ndarray, reference: str
) -> pd.DataFrame:
    """scib-metrics' bio-conservation and batch-correction scores of each embedding (rows), unscaled.

    ``reference`` names the unintegrated embedding that the principal-component regression compares with.
    """
    try:
        from scib_metrics.benchmark import Benchmarker
    except ImportError as err:  # an optional dependency
        raise ImportError(
            "The batch study scores with scib-metrics: `pip install scib-metrics` (or `pip install indiseek[benchmark]`)."
        ) from err
    adata = AnnData(np.zeros((len(batch), 1), dtype=np.float32))
    adata.obs["batch"] = pd.Categorical(batch.astype(str))
    adata.obs["label"] = pd.Categorical(labels.astype(str))
    for key, value in embeddings.items():
        adata.obsm[key] = np.asarray(value, dtype=np.float32)
    bench = Benchmarker(
        adata, "batch", "label", list(embeddings), pre_integrated_embedding_obsm_key=reference, progress_bar=False
    )
    with contextlib.redirect_stdout(io.StringIO()):
        bench.benchmark()
    table = bench.get_results(min_max_scale=False)
    return table.drop(index="Metric Type").apply(pd.to_numeric)


def run_batch(
    mdata: MuData,
    *,
    batch_key: str,
    label_key: str | None = None,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0,),
    **fit_kwargs,
) -> pd.DataFrame:
    """Score every method's representations for batch correction and bio conservation, per seed, on all cells.

    The scores are scib-metrics' (:func:`scib_scores`), the unintegrated RNA PCs + protein CLR as the reference of
    the principal-component regression. ``label_key=None``: Leiden groups of the batch-centred protein CLR stand in
    for cell types (:func:`protein_groups`). IndiSeek's joint, RNA-shared and RNA-specific representations are
    scored; totalVI's latent space and the raw representation as ``joint``.

    Returns
    -------
    One row per seed, method and representation: the metrics, ``Batch correction``, ``Bio conservation``,
    ``Total`` and ``seconds``.

    Examples
    --------
    >>> import indiseek as isk
    >>> from indiseek.benchmarks.batch import run_batch
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, n_batches=2, seed=0)
    >>> isk.pp.prepare(mdata, n_comps=20)
    >>> runs = run_batch(mdata, batch_key="batch", label_key="cell_type", methods=["raw"])  # doctest: +SKIP
    """
    from indiseek._constants import PREPARE_KEY
    from indiseek.pp import prepare

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {METHODS}.")
    for key in (batch_key, label_key):
        if key is not None and key not in mdata.obs:
            raise KeyError(f"{key!r} is not a column of `mdata.obs`; it has {list(mdata.obs.columns)}.")
    if PREPARE_KEY not in mdata.uns:
        prepare(mdata, seed=0)
    prot = str(mdata.uns[PREPARE_KEY]["prot"])
    batch = mdata.obs[batch_key].astype(str).to_numpy()
    labels = protein_groups(mdata, prot, batch_key) if label_key is None else mdata.obs[label_key].to_numpy()
    rows = []
    for seed in seeds:
        embeddings, seconds = {}, {}
        for method in methods:
            start = time.perf_counter()
            for rep, value in representations(
                mdata, method, batch_key=batch_key, seed=seed, fit_kwargs=fit_kwargs
            ).items():
                embeddings[f"{method}|{rep}"] = value
            seconds[method] = round(time.perf_counter() - start, 1)
        reference = "raw|joint"  # the unintegrated representation, scored or not
        if reference not in embeddings:
            embeddings["raw|joint"] = representations(mdata, "raw", batch_key=batch_key, seed=seed, fit_kwargs={})[
                "joint"
            ]
        table = scib_scores(embeddings, batch, labels, reference)
        for key, scores in table.iterrows():
            method, rep = key.split("|")
            if method in methods:
                rows.append(
                    {"seed": seed, "method": method, "representation": rep, **scores, "seconds": seconds[method]}
                )
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every score, per method and representation."""
    scores = [c for c in runs.columns if c not in ("seed", "method", "representation")]
    grouped = runs.groupby(["method", "representation"], sort=False)[scores]
    mean, sd = grouped.mean(), grouped.std(ddof=1)  # NaN for a single seed
    out = mean.round(3)
    for column in scores:
        out[f"{column}_sd"] = sd[column].round(3)
    return out.reset_index()


def to_markdown(summary: pd.DataFrame) -> str:
    """The headline columns of :func:`summarise` as a markdown table (mean ± sd; the mean alone for one seed)."""
    columns = ["Batch correction", "Bio conservation", "Total", "iLISI", "KBET", "Graph connectivity", "cLISI"]
    columns = [c for c in columns if c in summary.columns]
    lines = ["| method | representation | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for _, row in summary.iterrows():
        cells = [f"{row[c]:.3f}" + ("" if pd.isna(row[f"{c}_sd"]) else f" ± {row[f'{c}_sd']:.3f}") for c in columns]
        lines.append(f"| {row['method']} | {row['representation']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_scores(summary: pd.DataFrame, path) -> None:
    """Bio conservation against batch correction, one point per method and representation, saved to ``path``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for _, row in summary.iterrows():
        ax.errorbar(
            row["Batch correction"],
            row["Bio conservation"],
            xerr=np.nan_to_num(row["Batch correction_sd"]),
            yerr=np.nan_to_num(row["Bio conservation_sd"]),
            fmt="o",
            capsize=2,
        )
        ax.annotate(f"{row['method']} {row['representation']}", (row["Batch correction"], row["Bio conservation"]))
    ax.set_xlabel("batch correction (scib-metrics)")
    ax.set_ylabel("bio conservation (scib-metrics)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
