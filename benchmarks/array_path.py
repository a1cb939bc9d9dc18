"""Real CITE-seq data through the array path: prepared RNA PCs and protein CLR as plain arrays, probed for cell types.

A check that arrays from any source train as they are. Per seed, ``pp.prepare`` turns a CITE-seq file into RNA PCs
and protein CLR values; those two arrays and the labels go into ``data.from_arrays`` with a random 70/30
train/test split. IndiSeek and the CLIP-only baseline are fitted on the training split (``tl.fit`` on arrays
does not prepare them again), and ``tl.linear_probe`` predicts the labels of the test split from each
representation and from the two input arrays (the ceiling for a complete representation).

Usage::

    python benchmarks/array_path.py --data ../shared/data/bmmc_cite_600.h5mu --seeds 0 1 2
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

import indiseek as isk
from indiseek._inputs import guess_modalities

ROWS = {
    "X_indiseek_shared_rna": "shared RNA",
    "X_indiseek_shared_prot": "shared protein",
    "X_indiseek_specific_rna": "specific RNA",
    "X_indiseek_specific_prot": "specific protein",
    "X_indiseek": "joint (`X_indiseek`)",
    "rna": "input RNA PCs",
    "prot": "input protein CLR",
}


def prepared_arrays(path: str, n_comps: int, groupby: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RNA PCs and protein CLR of ``pp.prepare`` (the same for every seed) and the labels."""
    mdata = md.read_h5mu(path)
    isk.pp.prepare(mdata, n_comps=n_comps)
    rna, prot = guess_modalities(mdata)
    return mdata[rna].obsm["X_pca"], mdata[prot].layers["clr"], mdata.obs[groupby].astype(str).to_numpy()


def probe_seed(x_rna: np.ndarray, x_prot: np.ndarray, labels: np.ndarray, seed: int, fit_kwargs: dict) -> pd.DataFrame:
    """Test accuracy per representation (rows) for IndiSeek, CLIP-only and the input arrays (columns)."""
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
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING

    x_rna, x_prot, labels = prepared_arrays(args.data, args.n_comps, args.groupby)
    runs = pd.concat([probe_seed(x_rna, x_prot, labels, s, args.fit) for s in args.seeds])
    runs.index.name = "representation"
    mean, sd = runs.groupby(level=0).mean(), runs.groupby(level=0).std(ddof=1)
    print(f"{args.data}, settings {args.fit or 'defaults'}, seeds {args.seeds}: test accuracy, mean ± sd\n")
    print("| representation | IndiSeek | CLIP-only | the input array |")
    print("|---|---|---|---|")
    for key, name in ROWS.items():
        cells = []
        for column in ("indiseek", "clip", "inputs"):
            value = mean.loc[key, column] if key in mean.index else np.nan
            cells.append("–" if np.isnan(value) else f"{value:.3f} ± {np.nan_to_num(sd.loc[key, column]):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
