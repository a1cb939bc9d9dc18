"""Wall time of a whole default `tl.fit` on simulated cells, per preset (one torch thread, one fit at a time).

Usage::

    python benchmarks/fit_time.py --n-cells 15000 --presets auto paper
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import scvi

import indiseek as isk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=15_000)
    parser.add_argument("--presets", nargs="+", default=["auto", "paper"], choices=["auto", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING
    print(f"{args.n_cells} simulated cells, seed {args.seed}, {args.threads} torch thread(s)\n")
    print("| preset | fit time (s) | epochs (stage 1 / 2) | layers | dropout | lambda |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets:
        mdata = isk.datasets.simulated_cite(n_cells=args.n_cells, seed=args.seed)
        isk.pp.prepare(mdata, seed=args.seed)
        start = time.perf_counter()
        model = isk.tl.fit(mdata, preset=preset, seed=args.seed, n_threads=args.threads, enable_progress_bar=False)
        seconds = time.perf_counter() - start
        params = model.init_params_["non_kwargs"]
        epochs = " / ".join(str(len(model.history[f"{s}_loss_train"])) for s in ("shared", "specific"))
        print(
            f"| {preset} | {seconds:.0f} | {epochs} | {params['n_layers']} | {params['dropout']} | "
            f"{model.module.lam:g} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
