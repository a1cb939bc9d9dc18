"""TOTALVI's latent on the same cells, clustered as IndiSeek's representations are (k-means ARI/NMI).

Usage::

    python benchmarks/totalvi_reference.py --data ../shared/data/bmmc_cite_600.h5mu --epochs 200 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import mudata as md
import numpy as np
import scvi

import indiseek as isk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--epochs", type=int, nargs="+", default=[200], help="epochs per data file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--groupby", default="cell_type")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING
    epochs = args.epochs * len(args.data) if len(args.epochs) == 1 else args.epochs

    print("| data | cells | epochs | seed | train time (s) | k-means ARI | NMI |")
    print("|---|---|---|---|---|---|---|")
    for path, n_epochs in zip(args.data, epochs, strict=True):
        for seed in args.seeds:
            mdata = md.read_h5mu(path)
            prot = "prot" if "prot" in mdata.mod else "adt"
            # TOTALVI's protein-background prior fits a mixture model that needs dense protein counts
            mdata.mod[prot].X = np.asarray(mdata.mod[prot].X.toarray(), dtype=np.float32)
            scvi.settings.seed = seed
            scvi.model.TOTALVI.setup_mudata(mdata, modalities={"rna_layer": "rna", "protein_layer": prot})
            model = scvi.model.TOTALVI(mdata)
            start = time.perf_counter()
            model.train(max_epochs=n_epochs, enable_progress_bar=False)
            seconds = time.perf_counter() - start
            mdata.obsm["X_totalvi"] = np.asarray(model.get_latent_representation())
            isk.tl.cluster_agreement(mdata, args.groupby, use_rep=["X_totalvi"], seed=seed)
            row = mdata.uns["indiseek_cluster_agreement"].loc["X_totalvi"]
            print(
                f"| {Path(path).name} | {mdata.n_obs} | {n_epochs} | {seed} | {seconds:.0f} | {row['ari']:.3f} | "
                f"{row['nmi']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
