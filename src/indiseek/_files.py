"""The command line's files: checked before any work starts, read whatever the HDF5 layout, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: How to turn one AnnData with RNA and protein features into a MuData, for the error message that refuses one.
_CONVERT = (
    "python -c \"import anndata as ad, mudata as md; a = ad.read_h5ad('IN.h5ad'); "
    "t = a.var['feature_types']; md.MuData({'rna': a[:, t == 'Gene Expression'].copy(), "
    "'prot': a[:, t == 'Antibody Capture'].copy()}).write_h5mu('OUT.h5mu')\""
)


class UsageError(Exception):
    """A mistake in what the user passed that the user can fix; the command line prints it as one line."""


def check_input(path: str | os.PathLike) -> Path:
    """The input file, refused unless it exists, can be read and is HDF5."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise UsageError(f"input {str(path)!r} does not exist; check the path (omit INPUT to use the simulated data).")
    if not path.is_file():
        raise UsageError(f"input {str(path)!r} is not a file; pass an .h5mu (or .h5ad) file.")
    if not os.access(path, os.R_OK):
        raise UsageError(f"input {str(path)!r} cannot be read; check its permissions.")
    if not h5py.is_hdf5(path):
        raise UsageError(f"input {str(path)!r} is not an HDF5 file; pass a MuData .h5mu (or an AnnData .h5ad) file.")
    return path


def read_mudata(path: Path, *, modality: str | None = None, modality_option: str | None = None):
    """A MuData from an .h5mu file, or from an .h5ad holding RNA and protein features (``var["feature_types"]``).

    ``modality``: the file is an .h5ad of that one modality's features, returned as a MuData of it alone.
    ``modality_option``: the command-line option that names such a modality, offered when an .h5ad cannot be split.
    """
    import anndata as ad
    import h5py
    import mudata as md

    from indiseek.datasets import cite_h5ad_to_mudata

    with h5py.File(path, "r") as f:
        keys = set(f.keys())
    if "mod" in keys:
        if modality is not None:
            raise UsageError(f"{modality_option} is for an .h5ad of one modality; {str(path)!r} is a MuData.")
        return md.read_h5mu(path)
    if not {"X", "obs"} & keys:
        raise UsageError(f"input {str(path)!r} is an HDF5 file but neither a MuData (.h5mu) nor an AnnData (.h5ad).")
    adata = ad.read_h5ad(path)
    if modality is not None:
        return md.MuData({modality: adata})
    if "feature_types" not in adata.var:
        fix = f"if it holds one modality's counts, name it with {modality_option} (e.g. {modality_option} rna); otherwise "
        raise UsageError(
            f"input {str(path)!r} holds one AnnData without var['feature_types'], so its RNA and protein features "
            f"cannot be told apart; {fix if modality_option else ''}build a MuData with an 'rna' and a 'prot' "
            f"modality, e.g. {_CONVERT}"
        )
    return cite_h5ad_to_mudata(adata)


def check_output(path: str | os.PathLike, *, input_path: Path | None = None) -> Path:
    """The output file, refused unless its folder exists and is writable and it would not overwrite the input."""
    path = Path(path)
    if path.suffix != ".h5mu":
        raise UsageError(f"output {str(path)!r} must end in .h5mu (a MuData file).")
    if path.is_dir():
        raise UsageError(f"output {str(path)!r} is a folder; pass a file name, e.g. {str(path / 'out.h5mu')!r}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"the folder of output {str(path)!r} does not exist; create it first (mkdir -p {folder}).")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"the folder of output {str(path)!r} is not writable; choose another folder with -o.")
    if input_path is not None and path.resolve() == input_path.resolve():
        raise UsageError(f"output {str(path)!r} is the input file; write to another file so that the input is kept.")
    return path


def check_model_dir(path: str | os.PathLike) -> Path:
    """A folder to save a model in: its parent must exist and be writable; it may exist only as a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--save-model {str(path)!r} is a file; pass a folder for the model.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--save-model {str(path)!r}: its parent folder does not exist or is not writable.")
    return path


def write_atomically(mdata, path: Path) -> None:
    """Write ``mdata`` to ``path`` through a temporary file in the same folder, so a failed write leaves no file."""
    handle, tmp = tempfile.mkstemp(
        suffix=".h5mu", prefix=f".{path.name}.", dir=path.parent if str(path.parent) else "."
    )
    os.close(handle)
    try:
        mdata.write_h5mu(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
