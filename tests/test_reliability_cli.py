"""Reliability, second round: the command line never shows a traceback, nothing is lost, no silent reinterpretation."""

import contextlib
import hashlib
import io
import re
import warnings
from types import SimpleNamespace

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch
from _snapshot import changes, snapshot
from conftest import QUIET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indiseek as isk
from indiseek.cli import main

FAST = ["--n-comps", "10", "--max-epochs-shared", "2", "--max-epochs-specific", "2", "--batch-size", "32", "--quiet"]
TINY_TRAIN = {"n_hidden": 8, "n_layers": 2, "max_epochs_shared": 1, "max_epochs_specific": 1, **QUIET}


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small .h5mu, a CITE-seq .h5ad with feature types, a plain .h5ad, a text file and an HDF5 file of neither."""
    import h5py

    folder = tmp_path_factory.mktemp("inputs")
    mdata = isk.datasets.simulated_cite(n_cells=120, n_genes=60, n_proteins=10, seed=0)
    mdata.write_h5mu(folder / "small.h5mu")
    x = np.hstack([mdata["rna"].X.toarray(), mdata["prot"].X])
    names = list(mdata["rna"].var_names) + list(mdata["prot"].var_names)
    types = ["Gene Expression"] * 60 + ["Antibody Capture"] * 10
    ad.AnnData(x, obs=mdata.obs.copy(), var=pd.DataFrame({"feature_types": types}, index=names)).write_h5ad(
        folder / "cite.h5ad"
    )
    ad.AnnData(x, obs=mdata.obs.copy()).write_h5ad(folder / "plain.h5ad")
    (folder / "notes.txt").write_text("not a data file\n")
    with h5py.File(folder / "other.h5", "w") as f:
        f["values"] = np.arange(3)
    return folder


def _run(argv, capsys):
    """Exit status and the error stream of one command line run."""
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- paths, checked first
@pytest.mark.parametrize(
    ("make_input", "output", "match"),
    [
        (lambda d: d / "missing.h5mu", "out.h5mu", "does not exist"),
        (lambda d: d / "notes.txt", "out.h5mu", "is not an HDF5 file"),
        (lambda d: d / "other.h5", "out.h5mu", "neither a MuData"),
        (lambda d: d, "out.h5mu", "is not a file"),
        (lambda d: d / "plain.h5ad", "out.h5mu", "without var\\['feature_types'\\].*write_h5mu"),
        (lambda d: d / "small.h5mu", "no_such_folder/out.h5mu", "does not exist; create it first"),
        (lambda d: d / "small.h5mu", "out.txt", "must end in .h5mu"),
        (lambda d: d / "small.h5mu", ".", "must end in .h5mu"),
    ],
)
def test_bad_paths_get_one_line_before_any_work(files, tmp_path, monkeypatch, capsys, make_input, output, match):
    monkeypatch.setattr(isk.tl, "fit", lambda *a, **k: pytest.fail("training started before the paths were checked"))
    source = make_input(files)
    before = _digest(source) if source.is_file() else None
    status, err = _run(["fit", source, "-o", tmp_path / output], capsys)
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("indiseek: error: ") and "Traceback" not in err
    assert re.search(match, err), err
    assert not list(tmp_path.glob("*.h5mu"))
    if before is not None:
        assert _digest(source) == before


def test_output_over_the_input_is_refused_and_the_input_kept(files, capsys):
    source = files / "small.h5mu"
    before = _digest(source)
    status, err = _run(["fit", source, "-o", source], capsys)
    assert status == 1 and "is the input file" in err and _digest(source) == before


def test_benchmark_data_paths_are_checked_first(files, tmp_path, capsys):
    for argv in (
        ["benchmark", "cite-seq", "--data", tmp_path / "missing.h5mu", "-o", tmp_path / "study"],
        ["benchmark", "cite-seq", "--data", files / "notes.txt", "-o", tmp_path / "study"],
        ["benchmark", "multibench", "--data", tmp_path / "missing.pkl", "--dataset", "mosi", "-o", tmp_path / "study"],
    ):
        status, err = _run(argv, capsys)
        assert status == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "study").exists()


def test_debug_shows_the_traceback(tmp_path):
    from indiseek._files import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        main(["fit", str(tmp_path / "missing.h5mu"), "-o", str(tmp_path / "out.h5mu"), "--debug"])
    with pytest.raises(UsageError, match="does not exist"):
        main(["--debug", "fit", str(tmp_path / "missing.h5mu"), "-o", str(tmp_path / "out.h5mu")])


def test_a_cite_seq_h5ad_is_read(files, tmp_path, capsys):
    status, err = _run(["fit", files / "cite.h5ad", "-o", tmp_path / "out.h5mu", *FAST], capsys)
    assert status == 0, err
    out = md.read_h5mu(tmp_path / "out.h5mu")
    assert set(out.mod) == {"rna", "prot"} and out["prot"].n_vars == 10
    assert out.obsm["X_indiseek"].shape == (120, 200)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), PermissionError(13, "Permission denied")])
def test_a_failed_write_leaves_no_file_and_keeps_the_checkpoint(files, tmp_path, monkeypatch, capsys, error):
    def failing_write(self, path, **kwargs):
        with open(path, "wb") as f:  # a partial file, as a full disk leaves one
            f.write(b"partial")
        raise error

    monkeypatch.setattr(md.MuData, "write_h5mu", failing_write)
    status, err = _run(
        ["fit", files / "small.h5mu", "-o", tmp_path / "out.h5mu", "--save-model", tmp_path / "model", *FAST], capsys
    )
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert "could not write" in err and error.strerror in err and "saved in" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "model"]  # no output, no temporary file
    assert (tmp_path / "model" / "model.pt").exists()


def test_save_model_checkpoints_each_stage_and_resume_trains_what_is_left(files, tmp_path, monkeypatch, capsys):
    model_dir = tmp_path / "model"
    original = isk.IndiSeek._train_stage

    def stop_in_stage_two(self, stage, *args, **kwargs):
        if stage == "specific":
            raise FloatingPointError("stage 2 failed")
        return original(self, stage, *args, **kwargs)

    monkeypatch.setattr(isk.IndiSeek, "_train_stage", stop_in_stage_two)
    status, err = _run(
        ["fit", files / "small.h5mu", "-o", tmp_path / "a.h5mu", "--save-model", model_dir, *FAST], capsys
    )
    assert status == 1 and "stage 2 failed" in err and not (tmp_path / "a.h5mu").exists()
    mdata = md.read_h5mu(files / "small.h5mu")
    isk.pp.prepare(mdata, n_comps=10)
    stage_one = isk.IndiSeek.load(str(model_dir), adata=mdata)
    assert stage_one.trained_stages_ == ["shared"]

    monkeypatch.setattr(isk.IndiSeek, "_train_stage", original)
    trained = []
    monkeypatch.setattr(
        isk.IndiSeek,
        "_train_stage",
        lambda self, stage, *a, **k: trained.append(stage) or original(self, stage, *a, **k),
    )
    status, err = _run(
        ["fit", files / "small.h5mu", "-o", tmp_path / "b.h5mu", "--save-model", model_dir, "--resume", *FAST], capsys
    )
    assert status == 0, err
    assert set(trained) == {"specific"}  # stage 1 came from the checkpoint (stage 2: one call per lambda segment)
    out = md.read_h5mu(tmp_path / "b.h5mu")
    shared = stage_one.get_latent_representation(mdata, modality="rna", kind="shared")
    np.testing.assert_allclose(out.obsm["X_indiseek_shared_rna"], shared, atol=1e-6)


# ----------------------------------------------------------------------------------------------- property: any argv
_TOKENS = st.sampled_from(
    ["fit", "--lam", "-1", "abc", "0.5", "--n-cells", "0", "5", "60", "--seed", "x", "-o",
     "--modalities", "rna", "prot", "adt", "--threads", "-2", "1", "--resume", "--save-model", "--n-comps", "--bogus",
     "--batch-size", "1", "@IN", "@TXT", "@OUT", "@MISSING_DIR", "@DIR"]
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(_TOKENS, max_size=8))
def test_the_command_line_never_shows_a_traceback_nor_exits_0_without_output(files, tmp_path, monkeypatch, tokens):
    def fast_fit(mdata, *, modalities=None, **kwargs):  # the shell around training, with the checks of tl.fit
        names = tuple(modalities) if modalities else ("rna", "prot")
        isk._validation.check_mudata(mdata, names)
        if kwargs.get("lam", 10.0) <= 0:
            raise ValueError("`lam` must be a positive finite number.")
        if kwargs.get("n_threads") is not None and kwargs["n_threads"] < 1:
            raise ValueError("`n_threads` must be a positive integer.")
        for key in ("X_indiseek", *(f"X_indiseek_{k}_{m}" for k in ("shared", "specific") for m in names)):
            mdata.obsm[key] = np.zeros((mdata.n_obs, 2), dtype=np.float32)
        n = mdata.n_obs
        return SimpleNamespace(modality_names=names, history={}, train_indices=range(n), validation_indices=range(0))

    monkeypatch.setattr(isk.tl, "fit", fast_fit)
    out = tmp_path / "out.h5mu"
    out.unlink(missing_ok=True)
    paths = {"@IN": files / "small.h5mu", "@TXT": files / "notes.txt", "@OUT": out, "@DIR": tmp_path}
    paths["@MISSING_DIR"] = tmp_path / "missing" / "out.h5mu"
    argv = [str(paths.get(t, t)) for t in tokens]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status = main(argv)
        except SystemExit as stop:  # argparse: usage errors exit 2 with a usage line
            status = stop.code
    assert "Traceback" not in stderr.getvalue()
    assert status != 0 or out.exists()
    if status not in (0, 2):
        assert stderr.getvalue().startswith("indiseek: error: ")


# ----------------------------------------------------------------------------------------------- nothing lost in Python
def _raw(n_cells=200):
    return isk.datasets.simulated_cite(n_cells=n_cells, n_genes=60, n_proteins=10, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"train_indices": np.arange(190, 210)}, IndexError),
        ({"train_indices": np.ones(200, dtype=bool)}, TypeError),
        ({"lam": -1.0}, ValueError),
        ({"batch_size": 1}, ValueError),
        ({"no_such_option": 3}, TypeError),
    ],
)
def test_a_failed_fit_changes_nothing(kwargs, error):
    mdata = _raw()
    before = snapshot(mdata)
    with pytest.raises(error):
        isk.tl.fit(mdata, **{**TINY_TRAIN, **kwargs})
    assert not any(changes(before, snapshot(mdata)))


def test_fit_says_why_it_reads_a_log_normalised_rna_x_as_it_is():
    mdata = _raw()
    mdata["rna"].X = np.log1p(mdata["rna"].X.toarray())
    with pytest.warns(UserWarning, match=r"does not hold raw counts \(non-integer.*counts_layer=\"counts\""):
        isk.tl.fit(mdata, **TINY_TRAIN)
    assert "indiseek_prepare" not in mdata.uns
    assert mdata.uns["indiseek"]["inputs"]["rna"] == "X"


def test_duplicate_cell_names_are_refused_with_the_fix():
    mdata = _raw(60)
    names = list(mdata.obs_names)
    names[5] = names[4]
    for mod in mdata.mod.values():
        mod.obs_names = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata.update()
    before = snapshot(mdata)
    for call in (lambda: isk.pp.prepare(mdata), lambda: isk.tl.fit(mdata, **TINY_TRAIN)):
        with pytest.raises(ValueError, match=r"duplicated cell name.*obs_names_make_unique"):
            call()
    assert not any(changes(before, snapshot(mdata)))


# ----------------------------------------------------------------------------------------------- threads
def test_torch_threads_are_kept_across_preprocessing_and_set_for_a_fit(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mdata = _raw()
        isk.pp.prepare(mdata, n_comps=10)  # scanpy's numba kernels reset torch's count without the guard
        assert torch.get_num_threads() == 1
        seen = []
        original = isk.IndiSeek.train
        monkeypatch.setattr(
            isk.IndiSeek, "train", lambda self, *a, **k: seen.append(torch.get_num_threads()) or original(self, *a, **k)
        )
        isk.tl.fit(mdata, n_threads=2, **TINY_TRAIN)
        assert seen == [2] and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="n_threads"):
            isk.tl.fit(mdata, n_threads=0, **TINY_TRAIN)
    finally:
        torch.set_num_threads(threads)
