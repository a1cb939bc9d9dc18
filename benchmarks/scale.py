"""Scale: time per cell per epoch and peak memory of training, inference throughput, and theta's neighbour search.

Usage::

    python benchmarks/scale.py --sizes 100000 1000000
    python benchmarks/scale.py --wnn --sizes 100000 1000000

Each size runs in its own process (so that its peak memory is its own): simulated cells of the paper's CITE-seq
shape (RNA as 200 principal components, 25 proteins; 16 latent factors, linear maps, Gaussian noise) enter through
`indiseek.data.from_arrays`; the model trains one epoch of each stage (no validation split) with the default
networks and batch size; `get_latent_representation` embeds all cells (shared and specific, both modalities); and
the 11 nearest neighbours of every cell in one 50-dimensional specific representation are searched approximately
(pynndescent) and, up to 100,000 cells, exactly (scikit-learn), as `tl.theta_score` does.

With ``--wnn`` it times `tl.wnn_weights` instead (muon's WNN on the first 30 RNA components and the proteins, 20
neighbours), with the per-modality graphs approximate (pynndescent, the default from 50,000 cells on) and, up to
100,000 cells, exact (scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
import warnings


def simulate(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 16)).astype(np.float32)
    rna = latent[:, :12] @ rng.normal(size=(12, 200)).astype(np.float32)
    prot = latent[:, 4:] @ rng.normal(size=(12, 25)).astype(np.float32)
    rna += rng.normal(size=rna.shape).astype(np.float32)
    prot += 0.5 * rng.normal(size=prot.shape).astype(np.float32)
    return rna, prot


def one_size(n: int) -> dict:
    import lightning.pytorch as pl
    import numpy as np
    import scvi

    import indiseek as isk
    from indiseek.tl._neighbors import nearest_neighbors

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.times = []

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.times.append(time.perf_counter() - self.start)

    row = {"cells": n}
    mdata = isk.data.from_arrays(*simulate(n), names=("rna", "prot"))
    isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"})
    model = isk.IndiSeek(mdata, lam=10.0)  # fixed: lam="auto" needs validation cells; a step costs the same
    for stage, epochs in (("shared", (1, 0)), ("specific", (0, 1))):
        timer = EpochTimer()
        model.train(*epochs, validation_size=0, seed=0, enable_progress_bar=False, callbacks=[timer])
        row[f"{stage}_s_per_epoch"] = statistics.median(timer.times)
    start = time.perf_counter()
    z = None
    for modality in ("rna", "prot"):
        for kind in ("shared", "specific"):
            out = model.get_latent_representation(modality=modality, kind=kind, batch_size=16_384)
            z = out if (modality, kind) == ("rna", "specific") else z
    row["inference_s_4_representations"] = time.perf_counter() - start
    start = time.perf_counter()
    nearest_neighbors(z[:2000], 11, "approximate")  # numba compiles pynndescent on its first call
    row["neighbours_compile_s"] = time.perf_counter() - start
    start = time.perf_counter()
    nearest_neighbors(z, 11, "approximate")
    row["neighbours_approximate_s"] = time.perf_counter() - start
    if n <= 100_000:
        start = time.perf_counter()
        nearest_neighbors(z, 11, "exact")
        row["neighbours_exact_s"] = time.perf_counter() - start
    row["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    assert np.isfinite(z).all()
    return row


def wnn_size(n: int) -> dict:
    import indiseek as isk

    warnings.filterwarnings("ignore")
    rna, prot = simulate(n)
    row = {"cells": n}
    options = {"rna": "rna", "prot": "prot", "rna_input": "X", "prot_input": "X"}
    small = isk.data.from_arrays(rna[:2000], prot[:2000], names=("rna", "prot"))
    start = time.perf_counter()
    isk.tl.wnn_weights(small, neighbors="approximate", **options)  # numba compiles pynndescent on its first call
    row["compile_s"] = time.perf_counter() - start
    mdata = isk.data.from_arrays(rna, prot, names=("rna", "prot"))
    for method in ("approximate", "exact") if n <= 100_000 else ("approximate",):
        start = time.perf_counter()
        isk.tl.wnn_weights(mdata, neighbors=method, **options)
        row[f"wnn_{method}_s"] = time.perf_counter() - start
    row["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--wnn", action="store_true", help="time tl.wnn_weights instead of training")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps((wnn_size if args.wnn else one_size)(args.one)))
        return
    rows = []
    for n in args.sizes:
        command = [sys.executable, __file__, "--one", str(n), *(["--wnn"] if args.wnn else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if args.wnn:
        print("| cells | WNN, approximate graphs (s) | WNN, exact graphs (s) | peak memory (GiB) |")
        print("|---|---|---|---|")
        for r in rows:
            exact = f"{r['wnn_exact_s']:.1f}" if "wnn_exact_s" in r else "not run"
            print(f"| {r['cells']:,} | {r['wnn_approximate_s']:.1f} | {exact} | {r['peak_memory_gib']:.2f} |")
        return
    print(
        "| cells | stage 1 s/epoch | µs/cell | stage 2 s/epoch | µs/cell | embed 4 reps (cells/s) | "
        "kNN approx. (s) | kNN exact (s) | peak memory (GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["cells"]
        exact = f"{r['neighbours_exact_s']:.1f}" if "neighbours_exact_s" in r else "not run"
        print(
            f"| {n:,} | {r['shared_s_per_epoch']:.1f} | {1e6 * r['shared_s_per_epoch'] / n:.1f} | "
            f"{r['specific_s_per_epoch']:.1f} | {1e6 * r['specific_s_per_epoch'] / n:.1f} | "
            f"{n / r['inference_s_4_representations']:,.0f} | {r['neighbours_approximate_s']:.1f} | {exact} | "
            f"{r['peak_memory_gib']:.2f} |"
        )


if __name__ == "__main__":
    main()
