"""Training time with a second busy process on the machine, by torch thread count.

Usage::

    python benchmarks/threads.py                    # 2,000 simulated cells, 3 epochs per stage, 1 and 2 threads
    python benchmarks/threads.py --threads 1 2 --epochs 3

Each setting fits `isk.tl.fit(..., n_threads=N)` twice on the same prepared cells: once with the machine otherwise
idle, and once while a second process keeps one core busy (a Python loop). The table gives the median seconds per
epoch of each stage.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import warnings

import lightning.pytorch as pl

import indiseek as isk


class EpochTimer(pl.Callback):
    """Wall-clock time of every training epoch, by stage."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}

    def on_train_epoch_start(self, trainer, module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.setdefault(module.stage, []).append(time.perf_counter() - self._start)


def _busy(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _fit(mdata, n_threads: int, epochs: int) -> dict[str, float]:
    timer = EpochTimer()
    isk.tl.fit(
        mdata.copy(),
        n_threads=n_threads,
        max_epochs_shared=epochs,
        max_epochs_specific=epochs,
        early_stopping=False,
        enable_progress_bar=False,
        callbacks=[timer],
    )
    return {stage: statistics.median(times) for stage, times in timer.times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    mdata = isk.datasets.simulated_cite(n_cells=args.n_cells, seed=0)
    isk.pp.prepare(mdata)
    print(f"simulated_cite({args.n_cells}), {args.epochs} epochs per stage; median s/epoch")
    print("| torch threads | second process | stage 1 (s/epoch) | stage 2 (s/epoch) |")
    print("|---|---|---|---|")
    for n in args.threads:
        for busy in (False, True):
            stop = multiprocessing.Event()
            worker = multiprocessing.Process(target=_busy, args=(stop,)) if busy else None
            if worker is not None:
                worker.start()
            try:
                times = _fit(mdata, n, args.epochs)
            finally:
                if worker is not None:
                    stop.set()
                    worker.join()
            print(f"| {n} | {'busy' if busy else 'none'} | {times['shared']:.2f} | {times['specific']:.2f} |")


if __name__ == "__main__":
    main()
