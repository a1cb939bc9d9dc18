"""Batch-free representations on simulated batches with known truth (docs/benchmarks.md, "Batch correction").

For each seed: the simulated data with 3 batches, IndiSeek fitted on 80 % of the cells with and without
``batch_key``, and the same seed's batch-free simulation; on the other 20 %, a logistic regression (fitted on the
training cells) predicts the batch from each representation (standardised), and from its first 10 principal
components alone (``batch_acc_top10_*``: where the batch information lies), and a ridge regression the block's own
true factors.

    python benchmarks/batch_simulated.py --n-cells 3000 --seeds 1 2 --out /tmp/batch_simulated.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import indiseek as isk

SETTINGS = ("batch-free", "no batch_key", "batch_key")
BLOCKS = [(kind, mod) for kind in ("shared", "specific") for mod in ("rna", "prot")]


def run(n_cells: int, seed: int, setting: str, threads: int, fit_kwargs: dict | None = None) -> dict:
    n_batches = 1 if setting == "batch-free" else 3
    mdata = isk.datasets.simulated_cite(n_cells=n_cells, n_genes=500, n_batches=n_batches, seed=seed)
    cells = np.random.default_rng(seed).permutation(n_cells)
    train, test = np.sort(cells[: int(0.8 * n_cells)]), np.sort(cells[int(0.8 * n_cells) :])
    start = time.perf_counter()
    isk.tl.fit(
        mdata,
        n_comps=50,
        batch_key="batch" if setting == "batch_key" else None,
        train_indices=train,
        seed=seed,
        n_threads=threads,
        enable_progress_bar=False,
        **(fit_kwargs or {}),
    )
    row = {"seed": seed, "setting": setting, "seconds": round(time.perf_counter() - start)}
    truth = {"shared": mdata.obsm["latent_shared"], "rna": mdata.obsm["latent_rna"], "prot": mdata.obsm["latent_prot"]}
    for kind, mod in BLOCKS:
        x = mdata.obsm[f"X_indiseek_{kind}_{mod}"]
        y = truth["shared" if kind == "shared" else mod]
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(x[train], y[train])
        row[f"r2_{kind}_{mod}"] = ridge.score(x[test], y[test])
        if n_batches > 1:
            batch = mdata.obs["batch"].to_numpy()
            for prefix, first in (("", []), ("top10_", [PCA(10)])):
                probe = make_pipeline(*first, StandardScaler(), LogisticRegression(max_iter=2000))
                row[f"batch_acc_{prefix}{kind}_{mod}"] = probe.fit(x[train], batch[train]).score(x[test], batch[test])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--fit", type=json.loads, default={}, help="extra `tl.fit` keywords, as JSON")
    parser.add_argument("--out", default="batch_simulated.csv")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = []
    for seed in args.seeds:
        for setting in args.settings:
            rows.append(run(args.n_cells, seed, setting, args.threads, args.fit))
            print(rows[-1], flush=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).drop(columns="seed").groupby("setting", sort=False)
    print(table.mean().round(3).T.to_markdown())
    print(table.std().round(3).T.to_markdown())


if __name__ == "__main__":
    main()
