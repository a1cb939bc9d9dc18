"""IndiSeek with its defaults on the real CITE-seq files in ../shared/data: time and k-means agreement with labels.

Usage::

    python benchmarks/real_data.py --data ../shared/data/bmmc_cite_600.h5mu ../shared/data/pbmc10k_cite_1000hvg.h5mu
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import mudata as md
import scvi

import indiseek as isk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--groupby", default="cell_type")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING

    print("| data | cells | seed | fit time (s) | epochs (stage 1 / 2) | representation | k-means ARI | NMI |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.data:
        for seed in args.seeds:
            mdata = md.read_h5mu(path)
            start = time.perf_counter()
            model = isk.tl.fit(mdata, seed=seed, enable_progress_bar=False)
            seconds = time.perf_counter() - start
            epochs = " / ".join(str(len(model.history[f"{s}_loss_train"])) for s in ("shared", "specific"))
            isk.tl.cluster_agreement(mdata, args.groupby, seed=seed)
            for rep, row in mdata.uns["indiseek_cluster_agreement"].iterrows():
                print(
                    f"| {Path(path).name} | {mdata.n_obs} | {seed} | {seconds:.0f} | {epochs} | {rep} | "
                    f"{row['ari']:.3f} | {row['nmi']:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
