"""``indiseek benchmark batch``: batch correction with and without the covariate, scored with scib-metrics."""

from __future__ import annotations

import argparse


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of IndiSeek's batch covariate (``indiseek fit`` and ``indiseek benchmark batch``)."""
    parser.add_argument(
        "--standardize-within-batch",
        action="store_true",
        help='standardize_specific="within_batch": the specific features standardised within each batch',
    )
    parser.add_argument(
        "--erase-batch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="erase_batch: remove the directions in which the batches' mean shared features differ (default: off)",
    )


def batch_fit_options(args: argparse.Namespace) -> dict:
    """The ``tl.fit`` keywords that :func:`add_batch_options`' flags ask for (none when no flag is given)."""
    options = {"standardize_specific": "within_batch"} if args.standardize_within_batch else {}
    return options if args.erase_batch is None else {**options, "erase_batch": args.erase_batch}


def add_batch(studies) -> None:
    """Add ``indiseek benchmark batch`` to the studies' subparsers."""
    batch = studies.add_parser(
        "batch",
        help="batch correction: IndiSeek and totalVI with and without a batch covariate, scored with scib-metrics",
        description="Fit IndiSeek and totalVI with and without the batch covariate on all cells, per seed, and score "
        "their representations and the raw PCs + CLR with scib-metrics (needs `pip install scib-metrics`).",
    )
    batch.add_argument("--data", default=None, help=".h5mu with raw counts (default: simulated data in 3 batches)")
    batch.add_argument("--batch-key", default="batch", help="obs column of the batches (default: batch)")
    batch.add_argument(
        "--labels", default=None, help="obs column of the cell types (default: groups of the protein CLR)"
    )
    batch.add_argument("--n-cells", type=int, default=3000, help="simulated cells without --data (default: 3,000)")
    batch.add_argument("--methods", nargs="+", default=None, help="methods (default: all)")
    batch.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    add_batch_options(batch)
    batch.add_argument("-o", "--out", default="batch_study", help="output folder")


def run_batch_study(args: argparse.Namespace) -> int:
    """Run ``indiseek benchmark batch``: the table, the figure and the runs in ``--out``."""
    from indiseek.benchmarks import batch
    from indiseek.cli import _study

    if args.data is not None:
        from indiseek._files import check_input, read_mudata

        data, labels = read_mudata(check_input(args.data)), args.labels
    else:
        from indiseek.datasets import simulated_cite

        print(f"Simulating {args.n_cells} CITE-seq cells in 3 batches (seed 0) ...")
        data, labels = simulated_cite(n_cells=args.n_cells, n_batches=3, seed=0), args.labels or "cell_type"
    return _study(
        args,
        batch,
        batch.plot_scores,
        "batch.png",
        lambda: batch.run_batch(
            data,
            batch_key=args.batch_key,
            label_key=labels,
            methods=args.methods or batch.METHODS,
            seeds=args.seeds,
            **batch_fit_options(args),
        ),
    )
