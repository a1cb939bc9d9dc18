"""Command line: ``indiseek fit [INPUT.h5mu] -o OUTPUT.h5mu``, ``indiseek map`` and ``indiseek benchmark STUDY``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence

from indiseek._cli_batch import add_batch, add_batch_options, batch_fit_options, run_batch_study
from indiseek._cli_map import add_map, run_map


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    """Add the network size and dropout options that ``fit`` and ``benchmark cite-seq`` share."""
    parser.add_argument("--n-layers", type=int, default=None, help="layers per encoder and decoder (default: preset)")
    parser.add_argument("--n-hidden", type=int, default=None, help="width of the hidden layers (default: preset)")
    parser.add_argument("--dropout", type=float, default=None, help="dropout rate in the encoders (default: preset)")
    parser.add_argument(
        "--input-dropout",
        type=float,
        default=None,
        help="share of input features masked while the shared encoders train (default: preset)",
    )
    parser.add_argument(
        "--preset",
        choices=("auto", "paper"),
        default="auto",
        help='settings not given: "auto" adapts them to the number of cells, "paper" is the paper\'s (default: auto)',
    )


def _lam(value: str) -> float | str:
    """A positive number or "auto"."""
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number or "auto", got {value!r}') from None


def _add_fit(commands) -> None:
    fit = commands.add_parser(
        "fit",
        help="train IndiSeek and write the representations into an .h5mu file",
        description="Train IndiSeek on a MuData file (default: the built-in simulated CITE-seq data) and write a "
        "copy with the representations in .obsm.",
    )
    fit.add_argument("input", nargs="?", help="input .h5mu with raw counts (omit to use the simulated data)")
    fit.add_argument("-o", "--output", required=True, help="output .h5mu")
    fit.add_argument("--modalities", nargs=2, metavar=("RNA", "PROT"), help="names of the two modalities")
    fit.add_argument(
        "--lam", type=_lam, default=None, help='reconstruction weight lambda, a number or "auto" (default: preset)'
    )
    fit.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    fit.add_argument(
        "--batch-key", default=None, help="obs column with each cell's batch, whose information is removed"
    )
    add_batch_options(fit)  # with --batch-key
    _add_network_options(fit)
    fit.add_argument("--max-epochs-shared", type=int, default=None, help="epoch cap of stage 1 (CLIP)")
    fit.add_argument("--max-epochs-specific", type=int, default=None, help="epoch cap of stage 2")
    fit.add_argument("--batch-size", type=int, default=128, help="cells per optimiser step (default: 128)")
    fit.add_argument("--n-cells", type=int, default=5000, help="cells to simulate without INPUT (default: 5000)")
    fit.add_argument("--n-batches", type=int, default=1, help="batches to simulate without INPUT (default: 1)")
    fit.add_argument("--n-comps", type=int, default=200, help="RNA principal components (default: 200)")
    fit.add_argument("--accelerator", default="auto", help='Lightning accelerator ("cpu", "gpu", "auto")')
    fit.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, e.g. OMP_NUM_THREADS)")
    fit.add_argument("--save-model", metavar="DIR", help="save the model in DIR after each stage (a checkpoint)")
    fit.add_argument("--resume", action="store_true", help="continue the model saved in --save-model DIR")
    fit.add_argument(
        "--quiet", action="store_true", help="no progress bar (none is shown when stderr is not a terminal)"
    )


def _add_grid_options(parser: argparse.ArgumentParser, objectives: Sequence[str], lams: Sequence[float]) -> None:
    """Add the objectives, lambda grid and seeds that every study sweeps."""
    parser.add_argument("--objectives", nargs="+", default=list(objectives), help="objectives to compare")
    parser.add_argument("--lams", type=float, nargs="+", default=list(lams), help="lambda grid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")


def _add_synthetic(studies) -> None:
    synthetic = studies.add_parser(
        "synthetic",
        help="the paper's synthetic study: masking importance of specific encoders (oracle shared features)",
        description="Train the specific encoder of each synthetic setting with each objective, lambda and seed, "
        "given the oracle shared features, and write the masking-importance table and figure.",
    )
    synthetic.add_argument("--settings", type=int, nargs="+", default=[1, 2, 3, 4], help="settings (default: 1-4)")
    _add_grid_options(synthetic, ["indiseek", "factorcl", "infodisen"], [0.01, 0.1, 1.0, 10.0])
    synthetic.add_argument("--estimator", default="mlp", choices=["mlp", "moments"], help="CLUB estimator")
    synthetic.add_argument("--estimator-steps", type=int, default=5, help="estimator steps per encoder step")
    synthetic.add_argument("--estimator-layers", type=int, default=2, help="layers of the estimator's networks")
    synthetic.add_argument("--no-standardize", action="store_true", help="do not batch-normalise Z")
    synthetic.add_argument("--epochs", type=int, default=20, help="training epochs per run (default: 20)")
    synthetic.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    synthetic.add_argument("--n-train", type=int, default=10_000, help="training samples (default: 10,000)")
    synthetic.add_argument("--jobs", type=int, default=1, help="runs in parallel (default: 1)")
    synthetic.add_argument("-o", "--out", default="synthetic_study", help="output folder")


def _add_cite_seq(studies) -> None:
    cite = studies.add_parser(
        "cite-seq",
        help="theta's rank agreement with WNN weights and k-means ARI/NMI over objectives, lambda and seeds",
        description="Train on a random half of the cells per seed, compute theta on the other half, rank cell types "
        "against muon's WNN RNA weights (Spearman rho), and cluster every representation with k-means.",
    )
    cite.add_argument(
        "--data", default=None, help=".h5mu with rna and prot/adt raw counts and labels (default: simulated data)"
    )
    cite.add_argument("--n-cells", type=int, default=2000, help="simulated cells without --data (default: 2,000)")
    cite.add_argument("--groupby", default="cell_type", help="label column of .obs (default: cell_type)")
    _add_grid_options(cite, ["indiseek", "factorcl", "infodisen"], [10.0**j for j in range(-3, 4)])
    cite.add_argument("--train-fraction", type=float, default=0.5, help="share of cells that train (default: 0.5)")
    _add_network_options(cite)
    cite.add_argument("--n-specific", type=int, default=50, help="dimension of each specific block (default: 50)")
    cite.add_argument("-o", "--out", default="cite_seq_study", help="output folder")


def _add_tensors(studies) -> None:
    tensors = studies.add_parser(
        "tensors",
        help="offline tensor benchmark with known shared and specific labels: linear-probe accuracy",
        description="Fit each objective on simulated paired tensors (a shared latent block and one specific block "
        "per modality, each driving a label; linear and nonlinear mixing; flat and sequence layouts) and probe the "
        "representation for each label, beside a probe on the raw inputs.",
    )
    tensors.add_argument("--mixings", nargs="+", default=["linear", "nonlinear"], help="mixing maps")
    tensors.add_argument("--layouts", nargs="+", default=["flat", "sequence"], help="flat and/or sequence")
    _add_grid_options(tensors, ["indiseek", "factorcl", "infodisen", "clip"], [1.0, 10.0, 100.0])
    tensors.add_argument("--n", type=int, default=3000, help="samples per data set (default: 3000)")
    tensors.add_argument("--encoder", default="mlp", choices=["mlp", "transformer"], help="sequence encoder")
    tensors.add_argument("--epochs", type=int, default=40, help="stage-2 epochs (default: 40)")
    tensors.add_argument("--jobs", type=int, default=1, help="runs in parallel (default: 1)")
    tensors.add_argument("-o", "--out", default="tensors_study", help="output folder")


def _add_multibench(studies) -> None:
    multibench = studies.add_parser(
        "multibench",
        help="the paper's Table 1 protocol on a MultiBench file: linear-probe accuracy over lambda and seeds",
        description="Read a MultiBench file (affect pickle or MIMIC im.pk), fit each objective on its training split "
        "and probe the representation on its test split.",
    )
    multibench.add_argument("--data", required=True, help="MultiBench file (e.g. mosi_data.pkl, im.pk)")
    multibench.add_argument("--dataset", required=True, help="mosi, mosei, humor, sarcasm or mimic")
    _add_grid_options(multibench, ["indiseek", "factorcl", "infodisen", "clip"], [10.0**j for j in range(-3, 4)])
    multibench.add_argument("--encoder", default="transformer", choices=["mlp", "transformer"], help="encoder")
    multibench.add_argument("--task", type=int, default=7, help="MIMIC ICD-9 group (default: 7)")
    multibench.add_argument("--epochs", type=int, default=None, help="stage-2 epochs (default: the model's)")
    multibench.add_argument("--jobs", type=int, default=1, help="runs in parallel (default: 1)")
    multibench.add_argument("-o", "--out", default="multibench_study", help="output folder")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="indiseek",
        description="Learn shared and modality-specific representations of paired single-cell modalities.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_fit(commands)
    add_map(commands)
    benchmark = commands.add_parser("benchmark", help="run a reproducible study", description="Run a study.")
    studies = benchmark.add_subparsers(dest="study", required=True)
    for add in (_add_synthetic, _add_cite_seq, _add_tensors, _add_multibench, add_batch):
        add(studies)
    for sub in (
        commands.choices["fit"],
        commands.choices["map"],
        *studies.choices.values(),
    ):  # also accepted after the command
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _study(args: argparse.Namespace, study, plot, figure: str, runs) -> int:
    """Write a study's runs (``runs()``), summary and figure (``plot``) to ``--out``, and print the summary.

    Writes ``runs.csv``, ``summary.csv``, ``summary.md`` and the figure.
    """
    from pathlib import Path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    table_of_runs = runs()
    summary = study.summarise(table_of_runs)
    table_of_runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    plot(summary, out / figure)
    table = study.to_markdown(summary)
    (out / "summary.md").write_text(table + "\n")
    print(table)
    print(f"{len(table_of_runs)} runs in {time.perf_counter() - start:.0f} s; results in {out}/")
    return 0


def _cite_seq_data(args: argparse.Namespace):
    """The file named by ``--data`` (no truth), or the built-in simulated data (seed 0) and its truth column."""
    if args.data is not None:
        from indiseek._files import check_input, read_mudata

        return read_mudata(check_input(args.data)), None
    from indiseek.datasets import add_expected_theta_sign, simulated_cite

    print(f"Simulating {args.n_cells} CITE-seq cells (seed 0) ...")
    mdata = simulated_cite(n_cells=args.n_cells, seed=0)
    return mdata, add_expected_theta_sign(mdata)


def _benchmark_cite_seq(args: argparse.Namespace) -> int:
    from indiseek.benchmarks import cite_seq

    data, truth_key = _cite_seq_data(args)
    return _study(
        args,
        cite_seq,
        cite_seq.plot_rho,
        "rho.png",
        lambda: cite_seq.run_cite_seq(
            data,
            objectives=args.objectives,
            lams=args.lams,
            seeds=args.seeds,
            groupby=args.groupby,
            train_fraction=args.train_fraction,
            n_layers=args.n_layers,
            n_specific=args.n_specific,
            n_hidden=args.n_hidden,
            dropout=args.dropout,
            input_dropout=args.input_dropout,
            preset=args.preset,
            truth_key=truth_key,
        ),
    )


def _benchmark_tensors(args: argparse.Namespace) -> int:
    from indiseek.benchmarks import tensors

    return _study(
        args,
        tensors,
        tensors.plot_summary,
        "accuracy.png",
        lambda: tensors.run_tensors(
            args.mixings,
            args.layouts,
            args.objectives,
            args.lams,
            args.seeds,
            n=args.n,
            encoder=args.encoder,
            max_epochs_specific=args.epochs,
            jobs=args.jobs,
        ),
    )


def _benchmark_multibench(args: argparse.Namespace) -> int:
    from indiseek._files import UsageError
    from indiseek.benchmarks import multibench

    if not os.path.isfile(args.data):
        raise UsageError(f"--data {args.data!r} is not a file; pass a MultiBench file (e.g. mosi_data.pkl, im.pk).")

    return _study(
        args,
        multibench,
        multibench.plot_summary,
        "accuracy.png",
        lambda: multibench.run_multibench(
            args.data,
            args.dataset,
            args.objectives,
            args.lams,
            args.seeds,
            encoder=args.encoder,
            task=args.task,
            max_epochs_specific=args.epochs,
            jobs=args.jobs,
        ),
    )


def _benchmark_synthetic(args: argparse.Namespace) -> int:
    from indiseek.benchmarks import synthetic

    return _study(
        args,
        synthetic,
        synthetic.plot_summary,
        "importance.png",
        lambda: synthetic.run_synthetic(
            args.settings,
            args.objectives,
            args.lams,
            args.seeds,
            estimator=args.estimator,
            n_estimator_steps=args.estimator_steps,
            n_estimator_layers=args.estimator_layers,
            standardize_specific=not args.no_standardize,
            max_epochs=args.epochs,
            lr=args.lr,
            n_train=args.n_train,
            jobs=args.jobs,
        ),
    )


def _fit_paths(args: argparse.Namespace):
    """Check every path before any work starts: the input, the output and the model folder."""
    from indiseek._files import UsageError, check_input, check_model_dir, check_output

    input_path = None if args.input is None else check_input(args.input)
    output = check_output(args.output, input_path=input_path)
    model_dir = None if args.save_model is None else check_model_dir(args.save_model)
    if args.resume and (model_dir is None or not (model_dir / "model.pt").exists()):
        raise UsageError("--resume continues the model saved by an earlier run: pass its folder as --save-model DIR.")
    for flag, given in (
        ("--standardize-within-batch", args.standardize_within_batch),
        ("--[no-]erase-batch", args.erase_batch is not None),
    ):
        if given and args.batch_key is None:
            raise UsageError(f"{flag} acts on the batches of --batch-key KEY: pass it.")
    return input_path, output, model_dir


def _fit(args: argparse.Namespace) -> int:
    import indiseek as isk
    from indiseek._constants import JOINT_KEY, shared_key, specific_key
    from indiseek._files import read_mudata, write_atomically

    start = time.perf_counter()
    input_path, output, model_dir = _fit_paths(args)
    if input_path is None:
        print(f"Simulating {args.n_cells} CITE-seq cells (seed {args.seed}) ...")
        mdata = isk.datasets.simulated_cite(n_cells=args.n_cells, n_batches=args.n_batches, seed=args.seed)
    else:
        mdata = read_mudata(input_path)
    print(f"Data: {mdata.n_obs} cells; modalities {', '.join(f'{m} ({a.n_vars})' for m, a in mdata.mod.items())}")
    model = isk.tl.fit(
        mdata,
        modalities=args.modalities,
        batch_key=args.batch_key,
        **batch_fit_options(args),
        lam=args.lam,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        n_layers=args.n_layers,
        n_hidden=args.n_hidden,
        preset=args.preset,
        seed=args.seed,
        n_comps=args.n_comps,
        n_threads=args.threads,
        resume_from=model_dir if args.resume else None,
        checkpoint_dir=None if model_dir is None else str(model_dir),
        max_epochs_shared=args.max_epochs_shared,
        max_epochs_specific=args.max_epochs_specific,
        batch_size=args.batch_size,
        accelerator=args.accelerator,
        enable_progress_bar=not args.quiet and sys.stderr.isatty(),  # no carriage-return bars in log files
    )
    try:
        write_atomically(mdata, output)
    except OSError as err:
        kept = f" The trained model is saved in {str(model_dir)!r}." if model_dir is not None else ""
        raise OSError(f"could not write {str(output)!r} ({err.strerror or err}).{kept}") from err
    names = model.modality_names
    keys = [shared_key(m) for m in names] + [specific_key(m) for m in names] + [JOINT_KEY]
    history = model.history
    epochs = {s: len(history[f"{s}_loss_train"]) for s in ("shared", "specific") if f"{s}_loss_train" in history}
    print(
        f"Trained stage 1 (shared) for {epochs.get('shared', 0)} and stage 2 (specific) for "
        f"{epochs.get('specific', 0)} epochs on {len(model.train_indices)} cells "
        f"({len(model.validation_indices)} held out for validation)."
    )
    print(model.summary_string.splitlines()[0])
    if model.lam_auto_:
        print(f"lambda = {model.module.lam:g}, chosen on the validation cells (path: uns['indiseek']['lambda_path']).")
    print(f"Wrote {output} with:")
    for key in keys:
        print(f"  .obsm[{key!r}]  {mdata.obsm[key].shape[0]} x {mdata.obsm[key].shape[1]}")
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0


def _message(err: BaseException) -> str:
    """An exception as one line (a KeyError's message without the quotes that ``str`` adds)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


def _quiet_dependencies() -> None:
    """Keep the dependencies' notes for their own developers off the terminal (set before they are imported).

    Their INFO logs (Lightning's device report, tips and stopping notes, its "Seed set", scvi-tools' file notes) are
    disabled for the command; warnings and errors still show. Lightning resets its loggers' levels when it is
    imported, so a level set here would not hold; :func:`logging.disable` does, and :func:`main` lifts it on return.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    # mudata's note that a MuData's modalities share feature names, which IndiSeek never joins on
    warnings.filterwarnings("ignore", message="Cannot join columns with the same name", category=UserWarning)
    logging.disable(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``indiseek`` command line.

    Parameters
    ----------
    argv
        Arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    The exit status.

    Examples
    --------
    >>> from indiseek.cli import main
    >>> main(["fit", "-o", "simulated.h5mu", "--n-cells", "300", "--quiet"])  # doctest: +SKIP
    """
    args = _parser().parse_args(argv)
    disabled = logging.root.manager.disable
    _quiet_dependencies()
    try:
        return _run(args)
    finally:
        logging.disable(disabled)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; a user's mistake is printed as one line (exit status 1) unless ``--debug``."""
    from indiseek._files import UsageError

    commands = {
        "synthetic": _benchmark_synthetic,
        "cite-seq": _benchmark_cite_seq,
        "tensors": _benchmark_tensors,
        "multibench": _benchmark_multibench,
        "batch": run_batch_study,
    }
    run = {"fit": _fit, "map": run_map}.get(args.command) or commands[args.study]
    try:
        return run(args)
    except (UsageError, ValueError, KeyError, TypeError, IndexError, OSError, FloatingPointError) as err:
        if args.debug:
            raise
        print(f"indiseek: error: {_message(err)} (--debug shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("indiseek: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
