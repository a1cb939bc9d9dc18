"""``indiseek map``: a new sample through a trained model (representations, the modality it lacks, labels)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_map(commands) -> None:
    """Add the ``map`` command to the command line's subparsers."""
    mapping = commands.add_parser(
        "map",
        help="map a new sample onto a trained model",
        description="Embed a query's cells with a trained model (raw counts, one modality or both), impute the "
        "modality it lacks and, with --labels, transfer the reference's labels; write a copy of the query.",
    )
    mapping.add_argument("model", help="folder of the model (indiseek fit --save-model DIR)")
    mapping.add_argument(
        "query", help="query with raw counts: an .h5mu of one modality or both, or an .h5ad of one (with --modality)"
    )
    mapping.add_argument("-o", "--output", required=True, help="output .h5mu (the query with the results)")
    mapping.add_argument("--reference", required=True, help="the .h5mu the model was trained on (indiseek fit -o)")
    mapping.add_argument(
        "--modality",
        metavar="NAME",
        help="the query is an .h5ad of this one modality (one of the model's, e.g. rna)",
    )
    mapping.add_argument("--labels", metavar="KEY", help="column of the reference's .obs to transfer to the query")
    mapping.add_argument(
        "--use-rep",
        default=None,
        help="representation for --labels (default: X_indiseek with both modalities, else the shared one)",
    )
    mapping.add_argument(
        "--impute-method",
        choices=("neighbors", "marginal"),
        default="neighbors",
        help="imputation: the nearest training cells' reconstructions, or the decoder averaged over drawn specific "
        "features (default: neighbors)",
    )
    mapping.add_argument(
        "--n-neighbors", type=int, default=15, help="training cells per cell for imputation (default: 15)"
    )
    mapping.add_argument(
        "--n-samples", type=int, default=100, help="draws per cell for --impute-method marginal (default: 100)"
    )


def _paths(args: argparse.Namespace):
    from indiseek._files import UsageError, check_input, check_output

    model_dir = Path(args.model)
    if not (model_dir / "model.pt").is_file():
        raise UsageError(
            f"{str(model_dir)!r} holds no saved model; pass the folder of `indiseek fit --save-model DIR`."
        )
    query, reference = check_input(args.query), check_input(args.reference)
    return model_dir, query, reference, check_output(args.output, input_path=query)


def run_map(args: argparse.Namespace) -> int:
    """Run ``indiseek map``; returns the exit status."""
    import indiseek as isk
    from indiseek._constants import JOINT_KEY, shared_key
    from indiseek._files import UsageError, read_mudata, write_atomically

    start = time.perf_counter()
    model_dir, query_path, reference_path, output = _paths(args)
    reference = read_mudata(reference_path)
    query = read_mudata(query_path, modality=args.modality, modality_option="--modality")
    if args.labels is not None and args.labels not in reference.obs:
        raise UsageError(f"--labels {args.labels!r} is not a column of the reference's .obs: {list(reference.obs)}.")
    model = isk.IndiSeek.load(str(model_dir), adata=reference)
    if args.modality is not None and args.modality not in model.modality_names:
        raise UsageError(
            f"--modality {args.modality!r} is not one of the model's modalities: {', '.join(model.modality_names)}."
        )
    present = [m for m in model.modality_names if m in query.mod]
    print(
        f"Query: {query.n_obs} cells; modalities {', '.join(query.mod)} (the model's: {', '.join(present) or 'none'})"
    )
    isk.tl.write_representations(model, query)
    written = [k for k in query.obsm if k.startswith(JOINT_KEY)]
    if len(present) == 1:
        isk.tl.impute(
            model,
            query,
            source=present[0],
            method=args.impute_method,
            n_neighbors=args.n_neighbors,
            n_samples=args.n_samples,
        )
        written.append(f"mod[{[m for m in model.modality_names if m != present[0]][0] + '_imputed'!r}]")
    if args.labels is not None:
        use_rep = args.use_rep or (JOINT_KEY if len(present) == 2 else shared_key(present[0]))
        if use_rep not in reference.obsm:
            isk.tl.write_representations(model, reference)
        isk.tl.transfer_labels(reference, query, args.labels, use_rep=use_rep)
        written.append(f"obs[{args.labels + '_predicted'!r}] (from {use_rep})")
        predicted, confidence = (query.obs[f"{args.labels}_predicted{s}"] for s in ("", "_confidence"))
        print(
            f"Labels: {predicted.nunique()} of the reference's {reference.obs[args.labels].nunique()} types; "
            f"median confidence {confidence.median():.2f} (the share of a cell's reference neighbours that agree)."
        )
    write_atomically(query, output)
    print(f"Wrote {output} with: " + ", ".join(written))
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0
