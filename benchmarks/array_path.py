"""Real CITE-seq data through the array path: prepared RNA PCs and protein CLR as plain arrays, probed for cell types.

A check that arrays from any source train as they are. Per seed, ``pp.prepare`` turns a CITE-seq file into RNA PCs
and protein CLR values; those two arrays and the labels go into ``data.from_arrays`` with a random 70/30
train/test split. IndiSeek and the CLIP-only baseline are fitted on the training split (``tl.fit`` on arrays
does not prepare them again), and ``tl.linear_probe`` predicts the labels of the test split from each
representation and from the two input arrays (the ceiling for a complete representation). With ``--peers``, the
same probe also reads what a user would run instead on the same cells: the two input arrays side by side (each
divided by its mean row norm, as in ``peers.py``), and MOFA+ and totalVI (``peers.run_mofa``, ``peers.run_totalvi``).
Those two are unsupervised and have no way to embed new cells, so they are fitted on all cells (the test cells'
labels are never seen; their features are), which favours them over IndiSeek, fitted on the training split only.

Usage::

    python benchmarks/array_path.py --data ../shared/data/bmmc_cite_600.h5mu --seeds 0 1 2
    python benchmarks/array_path.py --data ../shared/data/bmmc_cite_600.h5mu --seeds 10 11 12 --peers
    python benchmarks/array_path.py --data ../shared/data/bmmc_cite_600.h5mu --seeds 0 1 2 --fit '{"preset": "paper"}'
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings

import mudata as md
import numpy as np
import pandas as pd
import scvi
import torch

import indiseek as isk
from indiseek._inputs import guess_modalities

PEERS = {"X_raw": "raw", "X_mofa": "mofa", "X_totalvi": "totalvi"}

ROWS = {
    "X_indiseek_shared_rna": "shared RNA",
    "X_indiseek_shared_prot": "shared protein",
    "X_indiseek_specific_rna": "specific RNA",
    "X_indiseek_specific_prot": "specific protein",
    "X_indiseek": "joint (`X_indiseek`)",
    "rna": "input RNA PCs",
    "prot": "input protein CLR",
    "X_raw": "RNA PCs + protein CLR, side by side",
    "X_mofa": "MOFA+ factors",
    "X_totalvi": "totalVI latent",
}


def prepared_arrays(path: str, n_comps: int, groupby: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, md.MuData]:
    """The RNA PCs and protein CLR of ``pp.prepare`` (the same for every seed), the labels and the prepared file."""
    mdata = md.read_h5mu(path)
    isk.pp.prepare(mdata, n_comps=n_comps)
    rna, prot = guess_modalities(mdata)
    labels = mdata.obs[groupby].astype(str).to_numpy()
    return mdata[rna].obsm["X_pca"], mdata[prot].layers["clr"], labels, mdata


def peer_representations(mdata: md.MuData, x_rna: np.ndarray, x_prot: np.ndarray, seed: int) -> dict:
    """The inputs side by side, MOFA+ and totalVI, each fitted on all cells of the prepared file."""
    from peers import run_mofa, run_totalvi  # benchmarks/peers.py, beside this script

    rna, prot = guess_modalities(mdata)
    unit = lambda a: a / np.linalg.norm(a, axis=1).mean()
    reps = {"X_raw": np.hstack([unit(x_rna), unit(x_prot)])}
    for run in (run_mofa, run_totalvi):
        reps.update(run(mdata, seed, rna, prot)[0])
    return reps


def probe_seed(
    x_rna: np.ndarray, x_prot: np.ndarray, labels: np.ndarray, seed: int, fit_kwargs: dict, peers: dict | None = None
) -> pd.DataFrame:
    """Test accuracy per representation (rows) for IndiSeek, CLIP-only, the input arrays and ``peers`` (columns)."""
    n = len(labels)
    test = np.random.default_rng(seed).permutation(n)[: int(round(0.3 * n))]
    split = np.where(np.isin(np.arange(n), test), "test", "train")
    arrays = isk.data.from_arrays(x_rna, x_prot, labels=labels, names=("rna", "prot"), split=split)
    columns = {}
    for objective in ("indiseek", "clip"):
        run = arrays.copy()
        isk.tl.fit(
            run,
            objective=objective,
            train_indices=np.flatnonzero(split == "train"),
            seed=seed,
            enable_progress_bar=False,
            n_threads=1,
            **fit_kwargs,
        )
        isk.tl.linear_probe(run)
        columns[objective] = run.uns["indiseek_linear_probe"]["accuracy"]["label"]
    isk.tl.linear_probe(arrays, use_rep=["rna", "prot"])
    columns["inputs"] = arrays.uns["indiseek_linear_probe"]["accuracy"]["label"]
    for key, x in (peers or {}).items():
        arrays.obsm[key] = x
        isk.tl.linear_probe(arrays, use_rep=[key])
        columns[PEERS[key]] = arrays.uns["indiseek_linear_probe"]["accuracy"]["label"]
    frame = pd.DataFrame(columns)
    frame["seed"] = seed
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help=".h5mu with RNA and protein raw counts and labels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--groupby", default="cell_type", help="label column of .obs")
    parser.add_argument("--n-comps", type=int, default=50, help="RNA principal components")
    parser.add_argument("--fit", type=json.loads, default={}, help="options of tl.fit as JSON")
    parser.add_argument("--peers", action="store_true", help="also probe the inputs side by side, MOFA+ and totalVI")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING
    torch.set_num_threads(1)  # as tl.fit(n_threads=1) below, for totalVI too

    x_rna, x_prot, labels, mdata = prepared_arrays(args.data, args.n_comps, args.groupby)
    runs = []
    for seed in args.seeds:
        peers = peer_representations(mdata, x_rna, x_prot, seed) if args.peers else None
        runs.append(probe_seed(x_rna, x_prot, labels, seed, args.fit, peers))
    runs = pd.concat(runs)
    runs.index.name = "representation"
    mean, sd = runs.groupby(level=0).mean(), runs.groupby(level=0).std(ddof=1)
    print(f"{args.data}, settings {args.fit or 'defaults'}, seeds {args.seeds}: test accuracy, mean ± sd\n")
    print("| representation | IndiSeek | CLIP-only | input arrays and other methods |")
    print("|---|---|---|---|")
    for key, name in ROWS.items():
        cells = []
        for columns in (["indiseek"], ["clip"], ["inputs", *PEERS.values()]):  # a row has a value in one of the last
            found = [c for c in columns if c in mean.columns and key in mean.index and not np.isnan(mean.loc[key, c])]
            cells.append(
                f"{mean.loc[key, found[0]]:.3f} ± {np.nan_to_num(sd.loc[key, found[0]]):.3f}" if found else "–"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
