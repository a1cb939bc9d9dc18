"""Per-epoch training time: IndiSeek's `model.train`, the same networks in a plain PyTorch loop, and scvi-tools' TOTALVI.

Usage::

    python benchmarks/speed.py --epochs 3                                   # simulated, 15,000 training cells
    python benchmarks/speed.py --data ../shared/data/pbmc10k_cite_1000hvg.h5mu --epochs 3
    python benchmarks/speed.py --epochs 3 --device cpu                      # a GPU machine's CPU (default: cuda)

All three run in one process on the same cells, one after the other. (a) times each stage's epochs through
`IndiSeek.train` (Lightning, scvi-tools' runner; no validation split); (b) runs the same module, optimisers, batch
size and stage-2 schedule (five estimator steps on fresh batches per encoder step) in a bare loop over tensors in
memory: the floor; (c) trains TOTALVI with its defaults on the raw counts of the same cells. (a) and (b) alternate
`--repeats` times, `--epochs` epochs per stage each time; the per-epoch time is the median over all their epochs.
All three run on `--device`; on a GPU each epoch's clock stops after the queued kernels finish.
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import statistics
import time
import warnings

import lightning.pytorch as pl
import mudata as md
import numpy as np
import scvi
import torch

import indiseek as isk
from indiseek.model import specific_step


class EpochTimer(pl.Callback):
    """Wall-clock time of every training epoch."""

    def __init__(self):
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        _synchronize(module.device)
        self.times.append(time.perf_counter() - self._start)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels, so that wall-clock times cover them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _adam(params):
    return torch.optim.Adam(list(params), lr=1e-3, fused=True)


def floor_epochs(module, x1, x2, epochs: int, batch_size: int = 128, n_estimator_steps: int = 5) -> dict:
    """Seconds of each epoch of each stage in a bare PyTorch loop over in-memory tensors."""
    torch.manual_seed(0)
    n, device = x1.shape[0], x1.device
    module.set_input_scale(x1, x2)
    module.train()
    out = {}
    shared_opt = _adam(module.shared_parameters())
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(n, device=device).split(batch_size):
            loss = module.shared_loss(x1[idx], x2[idx])
            shared_opt.zero_grad()
            loss.backward()
            shared_opt.step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    out["shared"] = times
    with torch.no_grad():
        module.eval()
        c1, c2 = module.shared(x1, 0), module.shared(x2, 1)
        module.train()
    main_opt, est_opt = _adam(module.specific_parameters()), _adam(module.estimator_parameters())
    tensors = {"x1": x1, "x2": x2, "c1": c1, "c2": c2}
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(n, device=device).split(batch_size):
            extra = torch.randint(n, (n_estimator_steps, len(idx)), device=device)
            fresh = [{k: v[extra[j]] for k, v in tensors.items()} for j in range(n_estimator_steps)]
            specific_step(module, {k: v[idx] for k, v in tensors.items()}, fresh, main_opt, est_opt)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    out["specific"] = times
    return out


def model_epochs(model: isk.IndiSeek, epochs: int, accelerator: str) -> dict:
    """Seconds of each epoch of each stage through `IndiSeek.train`."""
    out = {}
    for stage, (e1, e2) in (("shared", (epochs, 0)), ("specific", (0, epochs))):
        timer = EpochTimer()
        model.train(
            e1, e2, validation_size=0, seed=0, accelerator=accelerator, enable_progress_bar=False, callbacks=[timer]
        )
        out[stage] = timer.times
    return out


def totalvi_epochs(mdata, modalities, epochs: int, accelerator: str) -> float:
    """Median seconds per epoch of TOTALVI with its defaults (dense protein counts, as its prior needs)."""
    rna = mdata.mod[modalities[0]].copy()
    prot = mdata.mod[modalities[1]].copy()
    prot.X = np.asarray(prot.X.toarray() if hasattr(prot.X, "toarray") else prot.X, dtype=np.float32)
    data = md.MuData({"rna": rna, "prot": prot})
    scvi.model.TOTALVI.setup_mudata(data, modalities={"rna_layer": "rna", "protein_layer": "prot"})
    model = scvi.model.TOTALVI(data)
    timer = EpochTimer()
    model.train(max_epochs=epochs, accelerator=accelerator, enable_progress_bar=False, callbacks=[timer])
    return statistics.median(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=".h5mu with raw RNA and protein counts (default: simulated)")
    parser.add_argument("--n-cells", type=int, default=15_000, help="simulated cells (default: 15,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per stage and for TOTALVI (default: 3)")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of (a) and (b) (default: 3)")
    parser.add_argument("--skip-totalvi", action="store_true")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (default: cuda if found)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.WARNING

    if args.data:
        mdata = md.read_h5mu(args.data)
        modalities = ("rna", "prot" if "prot" in mdata.mod else "adt")
        name = args.data.rsplit("/", 1)[-1]
    else:
        mdata = isk.datasets.simulated_cite(n_cells=args.n_cells, seed=0)
        modalities = ("rna", "prot")
        name = f"simulated_cite({args.n_cells})"
    n_comps = min(200, mdata.mod["rna"].n_vars - 1, mdata.n_obs - 1)
    isk.pp.prepare(mdata, rna=modalities[0], prot=modalities[1], n_comps=n_comps)

    isk.IndiSeek.setup_mudata(
        mdata, modalities={"x1": modalities[0], "x2": modalities[1]}, x1_obsm_key="X_pca", x2_layer="clr"
    )
    # the default networks for this many cells at a fixed lambda: lam="auto" needs validation cells, which would
    # put the validation passes into (a) and not (b); a step costs the same at every lambda
    model = isk.IndiSeek(mdata, lam=10.0)
    device = torch.device(args.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    x1, x2 = (x.to(device) for x in model._training_tensors())
    module = copy.deepcopy(model.module).to(device)  # the same networks, untrained, for the floor
    model_times = {"shared": [], "specific": []}
    floor_times = {"shared": [], "specific": []}
    for _ in range(args.repeats):  # alternate, so that drifts of the machine's speed affect both alike
        for times, new in (
            (model_times, model_epochs(model, args.epochs, accelerator)),
            (floor_times, floor_epochs(module, x1, x2, args.epochs)),
        ):
            for stage in times:
                times[stage] += new[stage]
    model_times = {k: statistics.median(v) for k, v in model_times.items()}
    floor_times = {k: statistics.median(v) for k, v in floor_times.items()}
    totalvi = None if args.skip_totalvi else totalvi_epochs(mdata, modalities, args.epochs, accelerator)

    print(
        f"data: {name}, {mdata.n_obs} cells, RNA {x1.shape[1]} PCs, {x2.shape[1]} proteins; median of "
        f"{args.repeats} x {args.epochs} epochs per stage"
    )
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {where}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    layers = sum(isinstance(m, torch.nn.Linear) for m in model.module.shared_encoders[0].modules())
    print(f"networks: {layers} layers, dropout {model.module.dropout}, lambda {model.module.lam:g}")
    print("| step | (a) model.train (s/epoch) | (b) plain PyTorch (s/epoch) | a / b |")
    print("|---|---|---|---|")
    for stage in ("shared", "specific"):
        a, b = model_times[stage], floor_times[stage]
        print(f"| stage {1 if stage == 'shared' else 2} ({stage}) | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    both_a, both_b = sum(model_times.values()), sum(floor_times.values())
    print(f"| both stages | {both_a:.2f} | {both_b:.2f} | {both_a / both_b:.2f} |")
    if totalvi is not None:
        print(
            f"(c) TOTALVI: {totalvi:.2f} s/epoch; IndiSeek epoch of both stages / TOTALVI epoch: {both_a / totalvi:.2f}"
        )


if __name__ == "__main__":
    main()
