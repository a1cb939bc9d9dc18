"""Quality of IndiSeek on the built-in simulated CITE-seq data, measured on held-out cells.

The networks are trained on 80 % of the cells (10 % of those for validation); the other 20 % are embedded afterwards.
On the held-out cells we report

* stage 1 alignment: for each cell, the rank of its own protein shared features among all held-out cells' by cosine
  similarity to its RNA shared features (top-1 accuracy and median rank; chance: 1/n and n/2);
* disentanglement: R^2 of a ridge regression (fitted on half of the held-out cells, scored on the other half) of each
  true latent block (shared, RNA-specific, protein-specific) on each learned representation;
* per seed, the stage-2 CLUB estimate on the training and on the validation cells (mean of the last 5 epochs), and
  the share of the variance of each Z that is dropout's noise when the encoder runs as stage 2 trains it.

Usage::

    python benchmarks/simulated_quality.py --n-cells 5000 --seeds 0 1 2
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --lam 1000 --n-layers 2
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 --long-schedule   # the paper's 2,000 epochs
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --n-train 300   # a small sample's size
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --dropout 0.2   # dropout in the encoders
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --input-dropout 0   # no masking in stage 1
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 --fit '{"n_estimator_steps": 10}'   # any option
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --out sim.csv   # per-seed rows to a CSV
    python benchmarks/simulated_quality.py --n-cells 2000 --seeds 0 1 2 --fit '{"n_estimator_layers": 5}'   # CLUB depth

With ``lam="auto"`` (the default) it also scores the specific blocks at the end of every step of the lambda path.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
import torch
from sklearn.linear_model import RidgeCV

import indiseek as isk
from indiseek.model._lambda import path_segments

BLOCKS = ("shared", "rna", "prot")
# The paper's schedule for real data (appendix): 2,000 epochs per stage at learning rate 1e-4, no early stopping.
LONG_SCHEDULE = {"max_epochs_shared": 2000, "max_epochs_specific": 2000, "lr": 1e-4, "early_stopping": False}


def held_out_r2(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0] // 2
    return RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x[:n], y[:n]).score(x[n:], y[n:])


def evaluate(n_cells: int, seed: int, n_train: int | None = None, **fit_kwargs) -> dict:
    mdata = isk.datasets.simulated_cite(n_cells=n_cells, seed=seed)
    isk.pp.prepare(mdata)
    held_out = np.sort(np.random.default_rng(seed).permutation(n_cells)[: n_cells // 5])
    train = np.setdiff1d(np.arange(n_cells), held_out)
    if n_train is not None:
        if not 0 < n_train <= len(train):
            raise ValueError(f"`--n-train` must be between 1 and {len(train)} (the cells not held out), got {n_train}.")
        train = np.sort(np.random.default_rng(seed + 1).choice(train, n_train, replace=False))
    start = time.perf_counter()
    model = isk.tl.fit(mdata, train_indices=train, seed=seed, enable_progress_bar=False, n_threads=1, **fit_kwargs)
    seconds = time.perf_counter() - start
    rep = {
        f"{kind}_{m}": model.get_latent_representation(mdata, modality=m, kind=kind, indices=held_out)
        for kind in ("shared", "specific")
        for m in ("rna", "prot")
    }
    similarity = rep["shared_rna"] @ rep["shared_prot"].T
    rank = (similarity > similarity.diagonal()[:, None]).sum(axis=1)
    truth = {b: mdata.obsm[f"latent_{b}"][held_out] for b in BLOCKS}
    r2 = {name: {b: held_out_r2(x, truth[b]) for b in BLOCKS} for name, x in rep.items()}
    r2["raw_rna_pcs"] = {b: held_out_r2(mdata["rna"].obsm["X_pca"][held_out], truth[b]) for b in BLOCKS}
    r2["raw_prot_clr"] = {b: held_out_r2(mdata["prot"].layers["clr"][held_out], truth[b]) for b in BLOCKS}
    path = _path_r2(model, mdata, held_out, truth) if getattr(model, "lambda_path_", None) is not None else None
    return {
        "seconds": seconds,
        "epochs": {s: len(model.history[f"{s}_loss_train"]) for s in ("shared", "specific")},
        "top1": float((similarity.argmax(axis=1) == np.arange(len(held_out))).mean()),
        "median_rank": float(np.median(rank)),
        "n_held_out": len(held_out),
        "n_train": len(train),
        "r2": r2,
        "lam": model.module.lam,
        "path": path,
        "club": _club_gap(model.history),
        "noise": _dropout_noise_shares(model, held_out),
    }


def _dropout_noise_shares(model, cells: np.ndarray, n_passes: int = 8) -> dict[str, float]:
    """Per modality, the share of the variance of Z in training mode (dropout on) that is dropout's noise, on ``cells``.

    The variance over ``n_passes`` passes of each cell, averaged, over the variance across cells of the passes. 0
    without dropout; near 1 when what the encoder computes is drowned by the noise that stage 2 trains on.
    """
    module = copy.deepcopy(model.module).train()  # a copy: training mode updates the standardisation's statistics
    shares = {}
    for i, x in enumerate(model._training_tensors()):
        with torch.no_grad():
            passes = torch.stack([module.specific(x[torch.as_tensor(cells)], i) for _ in range(n_passes)]).double()
        shares[model.modality_names[i]] = float(passes.var(dim=0).mean() / passes.flatten(0, 1).var(dim=0).mean())
    return shares


def _club_gap(history: dict) -> dict[str, tuple[float, float]]:
    """Per modality, the stage-2 CLUB estimate on the training and on the validation cells (last 5 epochs' mean).

    An estimator that memorises the training cells' pairs gives a training estimate far above the validation one.
    """
    last = {key: float(frame.iloc[-5:, 0].mean()) for key, frame in history.items() if key.startswith("club_")}
    return {m: (last.get(f"club_{m}_train", np.nan), last.get(f"club_{m}_validation", np.nan)) for m in ("rna", "prot")}


def _path_r2(model, mdata, held_out: np.ndarray, truth: dict) -> list[dict]:
    """``lam="auto"``: the specific blocks' held-out R^2 at the end of each step of the lambda path."""
    steps = []
    for lam in path_segments(model):
        r2 = {}
        for m in ("rna", "prot"):
            z = model.get_latent_representation(mdata, modality=m, kind="specific", indices=held_out)
            r2[f"specific_{m}"] = {b: held_out_r2(z, truth[b]) for b in BLOCKS}
        steps.append({"lam": lam, "r2": r2})
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lam", type=lambda v: v if v == "auto" else float(v), default=None, help='a number or "auto"')
    parser.add_argument("--n-layers", type=int, default=None, help="layers per encoder and decoder")
    parser.add_argument(
        "--n-train", type=int, default=None, help="train on this many of the cells not held out (default: all of them)"
    )
    parser.add_argument("--dropout", type=float, default=None, help="dropout rate in the encoders")
    parser.add_argument("--input-dropout", type=float, default=None, help="share of inputs masked in stage 1")
    parser.add_argument("--preset", default=None, help='"paper" for the paper\'s networks and lambda')
    parser.add_argument("--long-schedule", action="store_true", help="2,000 epochs per stage at lr 1e-4 (the paper)")
    parser.add_argument("--out", default=None, help="append one row per seed, representation and block to this CSV")
    parser.add_argument(
        "--fit", type=json.loads, default={}, help="other options of tl.fit as JSON, e.g. '{\"n_estimator_steps\": 10}'"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING

    schedule = LONG_SCHEDULE if args.long_schedule else {}
    given = {"lam": args.lam, "n_layers": args.n_layers, "dropout": args.dropout, "preset": args.preset}
    given["input_dropout"] = args.input_dropout
    fit_kwargs = {**{k: v for k, v in given.items() if v is not None}, **schedule, **args.fit}
    results = [evaluate(args.n_cells, seed, n_train=args.n_train, **fit_kwargs) for seed in args.seeds]
    n = results[0]["n_held_out"]
    print(
        f"n_cells={args.n_cells}, settings={fit_kwargs or 'defaults'}, chosen lam={[r['lam'] for r in results]}, "
        f"seeds={args.seeds}, {results[0]['n_train']} training cells, "
        f"{n} held-out cells\n"
    )
    print(
        "| seed | train time (s) | epochs (stage 1 / 2) | top-1 match | median rank | CLUB train / validation | "
        "dropout noise share of Z in training (rna / prot) |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed, r in zip(args.seeds, results, strict=True):
        club = "; ".join(f"{m} {train:.2f} / {valid:.2f}" for m, (train, valid) in r["club"].items())
        print(
            f"| {seed} | {r['seconds']:.0f} | {r['epochs']['shared']} / {r['epochs']['specific']} | "
            f"{r['top1']:.3f} (chance {1 / n:.4f}) | {r['median_rank']:.0f} (chance {n / 2:.0f}) | {club} | "
            f"{r['noise']['rna']:.2f} / {r['noise']['prot']:.2f} |"
        )
    print("\nHeld-out ridge R^2 of each true latent block, mean over seeds (min-max):\n")
    print("| representation | shared factors | RNA-specific factors | protein-specific factors |")
    print("|---|---|---|---|")
    for name in results[0]["r2"]:
        cells = []
        for b in BLOCKS:
            values = np.array([r["r2"][name][b] for r in results])
            cells.append(f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if results[0]["path"] is not None:
        _print_path(results)
    if args.out:
        _append_rows(args.out, args.n_cells, fit_kwargs, args.seeds, results)


def _print_path(results: list[dict]) -> None:
    """Per step of the lambda path: the specific blocks' R^2 of the shared and their own factors, mean over seeds."""
    print("\nAlong the lambda path (end of each step), mean over seeds (min-max):\n")
    print(
        "| lambda | chosen (seeds) | Z_rna: shared | Z_rna: RNA-specific | Z_prot: shared | Z_prot: protein-specific |"
    )
    print("|---|---|---|---|---|---|")
    for k, step in enumerate(results[0]["path"]):
        lam = step["lam"]
        cells = []
        for name, own in (("specific_rna", "rna"), ("specific_prot", "prot")):
            for b in ("shared", own):
                values = np.array([r["path"][k]["r2"][name][b] for r in results])
                cells.append(f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})")
        chosen = sum(r["lam"] == lam for r in results)
        print(f"| {lam:g} | {chosen} | " + " | ".join(cells) + " |")


def _append_rows(path: str, n_cells: int, fit_kwargs: dict, seeds: list[int], results: list[dict]) -> None:
    """One row per seed, representation and true block (held-out R^2), with the settings and the chosen lambda."""
    settings = json.dumps(fit_kwargs, sort_keys=True)
    rows = []
    for seed, r in zip(seeds, results, strict=True):
        run = {"n_cells": n_cells, "settings": settings, "seed": seed, "lam": r["lam"], "seconds": r["seconds"]}
        rows += [run | {"representation": n, "block": b, "r2": v[b]} for n, v in r["r2"].items() for b in BLOCKS]
        for step in r["path"] or []:
            at = run | {"path_lam": step["lam"]}
            rows += [at | {"representation": n, "block": b, "r2": v[b]} for n, v in step["r2"].items() for b in BLOCKS]
    frame = pd.DataFrame(rows)
    frame.to_csv(path, mode="a", header=not Path(path).exists(), index=False)


if __name__ == "__main__":
    main()
