"""Reference mapping on real CITE-seq files: protein imputation and cell-type annotation of held-out query cells.

The reference cells are prepared on their own (``pp.prepare``) and IndiSeek is fitted on them with its defaults;
the query cells enter as raw counts. The query is the other ``batch`` (``--split batch``) or a random 30 % of the
cells (``--split random``, drawn by the seed).

* Imputation of the query's proteins from its RNA alone, scored per protein by Pearson's r between the imputed and
  the measured CLR (mean and median over proteins): IndiSeek (``model.impute``, both estimators), a ridge
  regression and a 15-NN regression from the RNA principal components (the reference's PCA, applied to the query),
  and totalVI (trained on reference and query together with the query's proteins missing, as its documentation
  does it). For IndiSeek also the Spearman correlation between ``model.predictability`` (on the reference's
  validation cells) and the per-protein r on the query.
* Annotation (15-NN label transfer, accuracy and macro-F1) from RNA alone: IndiSeek's ``X_indiseek_shared_rna``, the
  RNA PCs, totalVI's latent space; and from both modalities: ``X_indiseek``, the PCs + CLR.

Usage::

    python benchmarks/mapping.py --data ../shared/data/bmmc_cite_600.h5mu --split batch --seeds 0 1 2 --out map.csv
    python benchmarks/mapping.py --data ../shared/data/cbmc_cite_8k.h5mu --split random --seeds 0 1 2 --out map.csv
    python benchmarks/mapping.py --table map.csv
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import mudata as md
import muon as mu
import numpy as np
import pandas as pd
import scanpy as sc
import scvi
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

import indiseek as isk

METHODS = ("indiseek", "linear", "totalvi")
COLUMNS = (
    "data",
    "split",
    "seed",
    "task",
    "method",
    "mean_r",
    "median_r",
    "spearman_predictability",
    "accuracy",
    "macro_f1",
    "seconds",
)


def split(mdata, how: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the reference and the query cells."""
    if how == "batch":
        batches = np.asarray(mdata.obs["batch"].astype(str))
        query = batches == sorted(set(batches))[-1]
    else:
        query = np.zeros(mdata.n_obs, bool)
        query[np.random.default_rng(seed).permutation(mdata.n_obs)[: int(0.3 * mdata.n_obs)]] = True
    return np.flatnonzero(~query), np.flatnonzero(query)


def load(path: str, how: str, seed: int, groupby: str):
    """Reference (prepared) and query (raw counts) MuData of one split; cells without a label are left out."""
    mdata = md.read_h5mu(path)
    mdata = mdata[mdata.obs[groupby].notna().to_numpy()].copy()
    ref_idx, query_idx = split(mdata, how, seed)
    reference, query = mdata[ref_idx].copy(), mdata[query_idx].copy()
    isk.pp.prepare(reference, seed=0)
    return reference, query


def clr(adata) -> np.ndarray:
    """Per-cell CLR of protein counts (Pearson's r per protein does not depend on the reference's centring)."""
    tmp = adata.copy()
    tmp.X = np.asarray(tmp.X.toarray() if hasattr(tmp.X, "toarray") else tmp.X, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu.prot.pp.clr(tmp, axis=1)
    return np.asarray(tmp.X)


def rna_pcs(reference, query, rna: str, n_pcs: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The reference's RNA PCs and the query's, projected with the reference's centre and loadings."""
    ref = reference[rna]
    counts = query[rna][:, ref.var_names].X
    tmp = sc.AnnData(counts.astype(np.float32))
    sc.pp.normalize_total(tmp, target_sum=float(reference.uns["indiseek_prepare"]["target_sum"]))
    sc.pp.log1p(tmp)
    loadings = np.asarray(ref.varm["PCs"])[:, :n_pcs]
    projected = np.asarray(tmp.X @ loadings) - ref.var["lognorm_mean"].to_numpy() @ loadings
    return np.asarray(ref.obsm["X_pca"])[:, :n_pcs], projected


def per_protein_r(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    return np.array([pearsonr(predicted[:, j], measured[:, j])[0] for j in range(measured.shape[1])])


def annotation(ref_rep, query_rep, ref_labels, query_labels) -> dict:
    predicted = KNeighborsClassifier(15).fit(ref_rep, ref_labels).predict(query_rep)
    return {
        "accuracy": accuracy_score(query_labels, predicted),
        "macro_f1": f1_score(query_labels, predicted, average="macro"),
    }


def run_indiseek(reference, query, seed, rna, prot, groupby, measured):
    model = isk.tl.fit(reference, seed=seed, enable_progress_bar=False, n_threads=1)
    rows = []
    for method, name in (("neighbors", "indiseek"), ("marginal", "indiseek_marginal")):
        r = per_protein_r(model.impute(query[rna].copy(), source=rna, method=method).X, measured)
        table = model.predictability(prot, method=method)
        rows.append(
            {
                "task": "impute",
                "method": name,
                "mean_r": np.nanmean(r),
                "median_r": np.nanmedian(r),
                "spearman_predictability": spearmanr(table["predicted_r2"], r, nan_policy="omit")[0],
            }
        )
    rna_only = query[rna].copy()
    isk.tl.write_representations(model, rna_only, modality=rna)
    both = query.copy()
    isk.tl.write_representations(model, both)
    labels = reference.obs[groupby].astype(str), query.obs[groupby].astype(str)
    for task, data, key in (
        ("annotate_rna", rna_only, f"X_indiseek_shared_{rna}"),
        ("annotate_both", both, "X_indiseek"),
    ):
        rows.append({"task": task, "method": "indiseek", **annotation(reference.obsm[key], data.obsm[key], *labels)})
    return rows


def run_linear(reference, query, seed, rna, prot, groupby, measured):
    ref_pcs, query_pcs = rna_pcs(reference, query, rna)
    target = np.asarray(reference[prot].layers["clr"])
    rows = []
    for name, regressor in (
        ("ridge_pcs", RidgeCV(alphas=np.logspace(-2, 4, 13))),
        ("knn_pcs", KNeighborsRegressor(15)),
    ):
        r = per_protein_r(regressor.fit(ref_pcs, target).predict(query_pcs), measured)
        rows.append({"task": "impute", "method": name, "mean_r": np.nanmean(r), "median_r": np.nanmedian(r)})
    labels = reference.obs[groupby].astype(str), query.obs[groupby].astype(str)
    rows.append({"task": "annotate_rna", "method": "knn_pcs", **annotation(ref_pcs, query_pcs, *labels)})
    unit = lambda a, ref: a / np.linalg.norm(ref, axis=1).mean()
    query_clr = clr(query[prot]) - reference[prot].var["clr_mean"].to_numpy()
    ref_both = np.hstack([unit(ref_pcs, ref_pcs), unit(target, target)])
    query_both = np.hstack([unit(query_pcs, ref_pcs), unit(query_clr, target)])
    rows.append({"task": "annotate_both", "method": "knn_pcs_clr", **annotation(ref_both, query_both, *labels)})
    return rows


def run_totalvi(reference, query, seed, rna, prot, groupby, measured):
    """totalVI on reference + query, the query's proteins missing (all zero in its own batch)."""
    ref_rna, query_rna = reference[rna].copy(), query[rna][:, reference[rna].var_names].copy()
    joined = sc.concat([ref_rna, query_rna], label="_set", keys=["reference", "query"], index_unique=None)
    proteins = np.vstack(
        [
            np.asarray(reference[prot].X.toarray() if hasattr(reference[prot].X, "toarray") else reference[prot].X),
            np.zeros((query.n_obs, reference[prot].n_vars)),
        ]
    ).astype(np.float32)
    joined.obsm["protein"] = pd.DataFrame(proteins, index=joined.obs_names, columns=reference[prot].var_names)
    joined.X = joined.X.astype(np.float32)
    scvi.settings.seed = seed
    scvi.model.TOTALVI.setup_anndata(joined, batch_key="_set", protein_expression_obsm_key="protein")
    model = scvi.model.TOTALVI(joined)
    model.train(enable_progress_bar=False)
    is_query = (joined.obs["_set"] == "query").to_numpy()
    _, protein = model.get_normalized_expression(
        indices=np.flatnonzero(is_query), transform_batch="reference", n_samples=25, return_mean=True
    )
    r = per_protein_r(np.log1p(np.asarray(protein)), measured)
    latent = model.get_latent_representation()
    labels = reference.obs[groupby].astype(str), query.obs[groupby].astype(str)
    return [
        {"task": "impute", "method": "totalvi", "mean_r": np.nanmean(r), "median_r": np.nanmedian(r)},
        {"task": "annotate_rna", "method": "totalvi", **annotation(latent[~is_query], latent[is_query], *labels)},
    ]


def table(csv: str) -> str:
    frame = pd.read_csv(csv)
    cell = lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v.dropna()) > 1 else f"{v.mean():.3f}"
    out = []
    for (data, task), block in frame.groupby(["data", "task"], sort=False):
        metrics = ["mean_r", "median_r", "spearman_predictability"] if task == "impute" else ["accuracy", "macro_f1"]
        rows = [
            f"| {m} | {len(b)} | " + " | ".join(cell(b[k]) for k in metrics) + " |" for m, b in block.groupby("method")
        ]
        out += [
            f"\n{data}, {task}\n",
            "| method | seeds | " + " | ".join(metrics) + " |",
            "|---|---|" + "---|" * len(metrics),
            *rows,
        ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--split", choices=("batch", "random"), default="random")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--groupby", default="cell_type")
    parser.add_argument("--out")
    parser.add_argument("--table")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING
    torch.set_num_threads(1)
    runners = {"indiseek": run_indiseek, "linear": run_linear, "totalvi": run_totalvi}
    for seed in args.seeds:
        reference, query = load(args.data, args.split, seed, args.groupby)
        rna, prot = (str(reference.uns["indiseek_prepare"][k]) for k in ("rna", "prot"))
        measured = clr(query[prot])
        for method in args.methods:
            start = time.perf_counter()
            rows = runners[method](reference.copy(), query, seed, rna, prot, args.groupby, measured)
            frame = (
                pd.DataFrame(rows)
                .assign(data=Path(args.data).stem, split=args.split, seed=seed, seconds=time.perf_counter() - start)
                .reindex(columns=COLUMNS)
            )
            print(frame.dropna(axis=1, how="all").round(3).to_string(index=False), flush=True)
            if args.out:
                frame.to_csv(args.out, mode="a", header=not Path(args.out).exists(), index=False)


if __name__ == "__main__":
    main()
