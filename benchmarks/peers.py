"""IndiSeek's defaults against what a user would run instead, on the same cells of a real CITE-seq file.

Methods: IndiSeek (``tl.fit`` with the given keywords), MOFA+ (mofapy2 through ``muon.tl.mofa``, 20 factors, views
scaled), totalVI (scvi-tools defaults, raw counts), WNN (muon, Leiden clusters at the resolution giving as many
clusters as labels) and the raw representation (50 RNA PCs and protein CLR, each divided by its mean row norm).
Scores per representation: k-means ARI/NMI (k = number of labels) and 15-NN label accuracy (5-fold), each on the
features as written and standardised; for IndiSeek also theta's rank agreement with the WNN RNA weights, and the
same for theta on the raw representation. With ``--joint-variants``, IndiSeek's joint representation is also scored
built in other ways from the same fit (``joint_variants``). Rows are appended to ``--out`` (CSV); ``--table``
summarises it.

Usage::

    python benchmarks/peers.py --data ../shared/data/bmmc_cite_600.h5mu --seeds 0 1 2 --out peers.csv
    python benchmarks/peers.py --data ../shared/data/bmmc_cite_600.h5mu --methods indiseek --fit '{"lam": 100}' \
        --tag lam100 --seeds 0 1 2 --out peers.csv
    python benchmarks/peers.py --data ../shared/data/bmmc_cite_600.h5mu --methods indiseek --joint-variants \
        --tag joints --seeds 10 11 12 --out joints.csv
    python benchmarks/peers.py --table peers.csv
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import scanpy as sc
import scvi
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

import indiseek as isk
from indiseek.model._explained import joint_weights, total_variance
from indiseek.model._lambda import path_segments

METHODS = ("indiseek", "raw", "mofa", "totalvi", "wnn")
COLUMNS = (
    "data",
    "tag",
    "seed",
    "rep",
    "ari",
    "nmi",
    "knn",
    "ari_std",
    "nmi_std",
    "knn_std",
    "rho",
    "rho_raw",
    "wnn_type_sd",
    "lam",
    "epochs",
    "seconds",
)


def scores(x: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """k-means ARI/NMI and 15-NN accuracy (5-fold) on the features as given and standardised."""
    out = {}
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for suffix, feats in (("", x), ("_std", StandardScaler().fit_transform(x))):
        clusters = KMeans(len(np.unique(labels)), n_init=10, random_state=seed).fit_predict(feats)
        out["ari" + suffix] = adjusted_rand_score(labels, clusters)
        out["nmi" + suffix] = normalized_mutual_info_score(labels, clusters)
        out["knn" + suffix] = cross_val_score(KNeighborsClassifier(15), feats, labels, cv=folds).mean()
    return out


@functools.cache
def _prepared(path: str, groupby: str):
    cache = Path(tempfile.gettempdir()) / f"indiseek_peers_{Path(path).stem}.h5mu"  # WNN takes minutes on 8k cells
    if cache.exists():
        mdata = md.read_h5mu(cache)
        return mdata, *(str(mdata.uns["indiseek_prepare"][k]) for k in ("rna", "prot"))
    mdata = md.read_h5mu(path)
    if groupby in mdata.obs:
        keep = mdata.obs[groupby].notna().to_numpy()
        mdata = mdata[keep].copy()
    isk.pp.prepare(mdata, seed=0)
    isk.tl.wnn_weights(mdata, key_added="wnn")
    record = mdata.uns["indiseek_prepare"]
    rna, prot = str(record["rna"]), str(record["prot"])
    unit = lambda a: a / np.linalg.norm(a, axis=1).mean()
    mdata.obsm["X_raw_rna"] = np.asarray(mdata[rna].obsm["X_pca"])
    mdata.obsm["X_raw_prot"] = np.asarray(mdata[prot].layers["clr"])
    mdata.obsm["X_raw"] = np.hstack([unit(mdata.obsm["X_raw_rna"][:, :50]), unit(mdata.obsm["X_raw_prot"])])
    mdata.write_h5mu(cache)
    return mdata, rna, prot


def prepared(path: str, groupby: str):
    """The file, prepared by ``pp.prepare`` with WNN weights (once per file); cells without a label are left out."""
    mdata, rna, prot = _prepared(path, groupby)
    return mdata.copy(), rna, prot


def theta_rho(mdata, groupby: str, weight_key: str, use_rep=None) -> float:
    isk.tl.theta_score(mdata, groupby, use_rep=use_rep)
    isk.tl.rank_agreement(mdata, groupby, weight_key=weight_key, min_cells=5)
    return float(mdata.uns["indiseek_rank_agreement"]["rho"])


def run_indiseek(mdata, seed, groupby, weight_key, fit_kwargs, variants=False):
    model = isk.tl.fit(mdata, seed=seed, enable_progress_bar=False, n_threads=1, **fit_kwargs)
    extra = {"rho": theta_rho(mdata, groupby, weight_key), "lam": model.module.lam}
    extra["rho_raw"] = theta_rho(mdata, groupby, weight_key, ("X_raw_rna", "X_raw_prot"))
    epochs = [len(model.history.get(f"{s}_loss_train", [])) for s in ("shared", "specific")]
    extra["epochs"] = "/".join(map(str, epochs))
    names = {
        f"X_indiseek_{kind}_{mod}": f"X_indiseek_{kind}_{short}"
        for kind in ("shared", "specific")
        for mod, short in zip(model.modality_names, ("rna", "prot"), strict=True)
    }
    reps = {names.get(k, k): mdata.obsm[k] for k in mdata.obsm if k.startswith("X_indiseek")}
    if variants:
        reps.update(joint_variants(model))
    return {**reps, **path_representations(model)}, extra


@torch.no_grad()
def joint_variants(model) -> dict:
    """The training cells' joint representation built in three other ways from the same fit.

    ``joint_equal``: the four latent blocks, each scaled to a total variance of 1; ``joint_shared``: the two shared
    blocks at the model's weights; ``joint_decoded``: per modality, the decoder's output split into its shared part
    g(mean Z, C) and the rest g(Z, C) - g(mean Z, C), in the networks' input units and divided by the modality's
    total standard deviation (mean Z over the training cells).
    """
    module = model.module.eval()
    shared, specific, decoded = [], [], [[], []]
    for i, x in enumerate(model._training_tensors()):
        c, z = model._encode(x, i, "shared"), model._encode(x, i, "specific")
        shared.append(c)
        specific.append(z)
        mean_z = z[torch.as_tensor(model.train_indices)].mean(0, keepdim=True).expand_as(z)
        full, part = module.decode(z, c, i), module.decode(mean_z, c, i)
        scale = total_variance(module.scaled(x, i)) ** 0.5
        decoded[0].append(part / scale)
        decoded[1].append((full - part) / scale)
    unit = lambda block: block / total_variance(block) ** 0.5
    weights = model.joint_weights_
    return {
        "joint_equal": torch.cat([unit(b) for b in shared + specific], dim=1).numpy(),
        "joint_shared": torch.cat([w * b for w, b in zip(weights[:2], shared, strict=True)], dim=1).numpy(),
        "joint_decoded": torch.cat(decoded[0] + decoded[1], dim=1).numpy(),
    }


def path_representations(model) -> dict:
    """``X_indiseek`` at the end of each segment of the lambda path (``lam="auto"``): what the rule chose among.

    Each segment's joint representation is weighted by that segment's own explained variance.
    """
    out, x, weights = {}, model._training_tensors(), model.joint_weights_
    for lam in path_segments(model):
        model.joint_weights_, _ = joint_weights(model, x, model.train_indices, model.validation_indices)
        part = model.adata.copy()
        isk.tl.write_representations(model, part)
        out[f"path_lam{lam:g}"] = part.obsm["X_indiseek"]
    model.joint_weights_ = weights
    return out


def run_mofa(mdata, seed, rna, prot):
    import muon as mu

    rna_ad = mdata[rna].copy()
    rna_ad.X = rna_ad.layers["lognorm"]
    if rna_ad.n_vars > 2000:
        sc.pp.highly_variable_genes(rna_ad, n_top_genes=2000)
        rna_ad = rna_ad[:, rna_ad.var["highly_variable"]].copy()
    prot_ad = mdata[prot].copy()
    prot_ad.X = prot_ad.layers["clr"]
    views = md.MuData({"rna": rna_ad, "prot": prot_ad})
    with tempfile.TemporaryDirectory() as tmp:
        mu.tl.mofa(views, n_factors=20, scale_views=True, use_var=None, seed=seed, outfile=f"{tmp}/m.hdf5", quiet=True)
    return {"X_mofa": np.asarray(views.obsm["X_mofa"])}, {}


def run_totalvi(mdata, seed, rna, prot):
    counts = md.MuData({"rna": mdata[rna].copy(), "prot": mdata[prot].copy()})
    counts["prot"].X = np.asarray(
        counts["prot"].X.toarray() if hasattr(counts["prot"].X, "toarray") else counts["prot"].X, dtype=np.float32
    )
    if counts["rna"].n_vars > 4000:
        sc.pp.highly_variable_genes(counts["rna"], n_top_genes=4000, flavor="seurat_v3")
        counts.mod["rna"] = counts["rna"][:, counts["rna"].var["highly_variable"]].copy()
        counts.update()
    scvi.settings.seed = seed
    scvi.model.TOTALVI.setup_mudata(counts, modalities={"rna_layer": "rna", "protein_layer": "prot"})
    model = scvi.model.TOTALVI(counts)
    model.train(enable_progress_bar=False)
    epochs = len(model.history["elbo_train"])
    return {"X_totalvi": np.asarray(model.get_latent_representation())}, {"epochs": str(epochs)}


def wnn_clusters(mdata, n_labels: int, seed: int) -> np.ndarray:
    """Leiden on muon's WNN graph, at the resolution (bisection) whose cluster count is closest to ``n_labels``."""
    low, high, best = 0.05, 10.0, None
    for _ in range(14):
        res = (low * high) ** 0.5
        sc.tl.leiden(
            mdata,
            resolution=res,
            key_added="_wnn_leiden",
            random_state=seed,
            flavor="igraph",
            n_iterations=2,
            neighbors_key="wnn",
        )
        clusters = mdata.obs["_wnn_leiden"].to_numpy()
        n = len(np.unique(clusters))
        if best is None or abs(n - n_labels) < abs(best[0] - n_labels):
            best = (n, clusters)
        if n == n_labels:
            break
        low, high = (res, high) if n < n_labels else (low, res)
    del mdata.obs["_wnn_leiden"]
    return best[1]


def run_method(method, path, seed, groupby, fit_kwargs, variants=False):
    mdata, rna, prot = prepared(path, groupby)
    labels = mdata.obs[groupby].astype(str).to_numpy()
    weight_key = f"{rna}:mod_weight"
    start = time.perf_counter()
    if method == "indiseek":
        reps, extra = run_indiseek(mdata, seed, groupby, weight_key, fit_kwargs, variants)
    elif method == "mofa":
        reps, extra = run_mofa(mdata, seed, rna, prot)
    elif method == "totalvi":
        reps, extra = run_totalvi(mdata, seed, rna, prot)
    elif method == "raw":
        reps, extra = {"X_raw": mdata.obsm["X_raw"]}, {}
    else:
        clusters = wnn_clusters(mdata, len(np.unique(labels)), seed)
        spread = mdata.obs.groupby(groupby, observed=True)[weight_key].mean().std()
        return [
            {
                "rep": "wnn_leiden",
                "ari": adjusted_rand_score(labels, clusters),
                "nmi": normalized_mutual_info_score(labels, clusters),
                "wnn_type_sd": spread,
            }
        ]
    seconds = time.perf_counter() - start
    return [{"rep": rep, "seconds": seconds, **extra, **scores(np.asarray(x), labels, seed)} for rep, x in reps.items()]


METRICS = ("ari", "nmi", "knn", "ari_std", "nmi_std", "knn_std", "rho", "rho_raw")


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    return f"{values.mean():.3f}" if len(values) == 1 else f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def table(csv: str) -> str:
    """Mean ± sd over seeds per data set, method and representation; then the lambda choice against the labels'."""
    runs = pd.read_csv(csv)
    lines = []
    for data, block in runs.groupby("data", sort=False):
        lines += [f"\n{data}\n", "| method | representation | seeds | " + " | ".join(METRICS) + " |"]
        lines.append("|---" * (len(METRICS) + 3) + "|")
        scored = block[~block["rep"].str.startswith("path_")]
        for (tag, rep), rows in scored.groupby(["tag", "rep"], sort=False):
            seeds = ",".join(map(str, sorted(rows["seed"])))
            lines.append(f"| {tag} | {rep} | {seeds} | " + " | ".join(_cell(rows[m]) for m in METRICS) + " |")
        lines += lambda_choice(block)
    return "\n".join(lines)


def lambda_choice(block: pd.DataFrame) -> list[str]:
    """Per seed: the lambda the rule chose, and the path lambda whose X_indiseek has the best 15-NN accuracy."""
    path = block[block["rep"].str.startswith("path_")]
    if path.empty:
        return []
    lines = [
        "",
        "| seed | chosen lambda | 15-NN (std.) at it | best lambda by labels | its 15-NN (std.) |",
        "|---|---|---|---|---|",
    ]
    for (tag, seed), rows in path.groupby(["tag", "seed"], sort=False):
        lam = rows["rep"].str.removeprefix("path_lam").astype(float)
        chosen = block[(block["tag"] == tag) & (block["seed"] == seed) & (block["rep"] == "X_indiseek")]["lam"].item()
        best = rows["knn_std"].to_numpy().argmax()
        at_chosen = rows["knn_std"].to_numpy()[np.flatnonzero(lam.to_numpy() == chosen)[0]]
        lines.append(
            f"| {seed} | {chosen:g} | {at_chosen:.3f} | {lam.iloc[best]:g} | {rows['knn_std'].iloc[best]:.3f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--groupby", default="cell_type")
    parser.add_argument("--fit", default="{}", help="tl.fit keywords as JSON")
    parser.add_argument("--tag", default=None, help="name of the IndiSeek setting in the table")
    parser.add_argument("--joint-variants", action="store_true", help="also score the joint built other ways")
    parser.add_argument("--out")
    parser.add_argument("--table")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING
    fit_kwargs = json.loads(args.fit)
    torch.set_num_threads(1)  # faster than 2 on this machine for every method here (benchmarks/threads.py)
    for method in args.methods:
        for seed in args.seeds:
            rows = run_method(method, args.data, seed, args.groupby, fit_kwargs, args.joint_variants)
            tag = (args.tag or "indiseek") if method == "indiseek" else method
            frame = pd.DataFrame(rows).assign(data=Path(args.data).stem, tag=tag, seed=seed).reindex(columns=COLUMNS)
            print(frame.drop(columns=["data"]).dropna(axis=1, how="all").round(3).to_string(index=False), flush=True)
            if args.out:
                frame.to_csv(args.out, mode="a", header=not Path(args.out).exists(), index=False)


if __name__ == "__main__":
    main()
