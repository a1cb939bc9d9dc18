import logging
import subprocess
import sys

import mudata as md
import pandas as pd
import pytest

import indiseek as isk
from indiseek.cli import main


def test_cli_fit_builtin_data(tmp_path, capsys):
    out = tmp_path / "sim.h5mu"
    status = main(
        [
            "fit",
            "-o",
            str(out),
            "--n-cells",
            "300",
            "--n-comps",
            "20",
            "--max-epochs-shared",
            "2",
            "--max-epochs-specific",
            "2",
            "--quiet",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "X_indiseek_specific_prot" in printed and "Wrote" in printed
    mdata = md.read_h5mu(out)
    for key in (
        "X_indiseek",
        "X_indiseek_shared_rna",
        "X_indiseek_shared_prot",
        "X_indiseek_specific_rna",
        "X_indiseek_specific_prot",
    ):
        assert key in mdata.obsm
    assert mdata.obsm["X_indiseek"].shape == (300, 200)
    assert list(mdata.obs["cell_type"].cat.categories)[0] == "A1"  # ground truth travels with the file


def test_cli_fit_input_file(tmp_path):
    source = isk.datasets.simulated_cite(n_cells=150, n_genes=80, seed=1)
    source.write_h5mu(tmp_path / "in.h5mu")
    status = main(
        [
            "fit",
            str(tmp_path / "in.h5mu"),
            "-o",
            str(tmp_path / "out.h5mu"),
            "--n-comps",
            "10",
            "--max-epochs-shared",
            "1",
            "--max-epochs-specific",
            "1",
            "--lam",
            "0.5",
            "--dropout",
            "0.1",
            "--input-dropout",
            "0.25",
            "--n-layers",
            "2",
            "--n-hidden",
            "16",
            "--quiet",
        ]
    )
    assert status == 0
    mdata = md.read_h5mu(tmp_path / "out.h5mu")
    params = mdata.uns["indiseek"]["params"]
    assert params["lam"] == 0.5
    assert params["dropout"] == 0.1 and params["n_layers"] == 2 and params["n_hidden"] == 16
    assert params["input_dropout"] == 0.25
    assert mdata.obsm["X_indiseek_specific_rna"].shape == (150, 50)


def test_benchmark_synthetic_writes_runs_summary_and_figure(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["benchmark", "synthetic", "--settings", "2", "--objectives", "indiseek", "infodisen", "--lams", "0.1"]
    assert main([*argv, "--seeds", "0", "--epochs", "1", "--lr", "5e-4", "--n-train", "512", "-o", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["objective"]) == ["indiseek", "infodisen"] and (runs["setting"] == 2).all()
    assert (runs["lr"] == 5e-4).all() and (runs["max_epochs"] == 1).all()
    assert (out / "importance.png").stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert summary.count("\n") == 4 and "| 2 | infodisen | 0.1 |" in summary
    assert "2 runs in" in capsys.readouterr().out


def test_benchmark_cite_seq_passes_the_network_size_to_every_fit(tmp_path, monkeypatch):
    import indiseek.benchmarks.cite_seq as study

    seen = {}

    def fake_run(data, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"objective": ["indiseek"], "lam": [1.0], "seed": [0], "rho": [0.5], "seconds": [1.0]})

    monkeypatch.setattr(study, "run_cite_seq", fake_run)
    data = tmp_path / "x.h5mu"  # the path is checked before the study runs
    isk.datasets.simulated_cite(n_cells=50, n_genes=30, seed=0).write_h5mu(data)
    argv = ["benchmark", "cite-seq", "--data", str(data), "--lams", "1", "--n-layers", "2", "--n-specific", "10"]
    assert main([*argv, "--dropout", "0.2", "--input-dropout", "0.1", "--n-hidden", "64", "-o", str(tmp_path)]) == 0
    assert seen["n_layers"] == 2 and seen["n_specific"] == 10 and seen["n_hidden"] == 64 and seen["lams"] == [1.0]
    assert seen["dropout"] == 0.2 and seen["input_dropout"] == 0.1
    assert "| indiseek | 1 | 0.500 |" in (tmp_path / "summary.md").read_text()


def test_benchmark_cite_seq_runs_on_the_built_in_data_without_a_file(tmp_path, monkeypatch):
    import indiseek.benchmarks.cite_seq as study

    seen = {}

    def fake_run(data, **kwargs):
        seen["data"], seen["truth_key"] = data, kwargs["truth_key"]
        return pd.DataFrame({"objective": ["indiseek"], "lam": [1.0], "seed": [0], "rho": [0.5], "seconds": [1.0]})

    monkeypatch.setattr(study, "run_cite_seq", fake_run)
    assert main(["benchmark", "cite-seq", "--n-cells", "300", "--lams", "1", "-o", str(tmp_path)]) == 0
    data = seen["data"]
    assert data.n_obs == 300 and set(data.mod) == {"rna", "prot"}
    assert data.obs["cell_type"].nunique() == 9
    # The truth column: theta should be positive where RNA-specific factors split the types, negative for protein.
    sign = data.obs.groupby("distinguished_by", observed=True)[seen["truth_key"]].agg(["min", "max"])
    assert sign.loc["rna"].tolist() == [1.0, 1.0] and sign.loc["prot"].tolist() == [-1.0, -1.0]
    assert sign.loc["shared"].tolist() == [0.0, 0.0]


def test_expected_theta_sign_needs_the_simulated_truth():
    from indiseek.datasets import add_expected_theta_sign

    mdata = isk.datasets.simulated_cite(n_cells=200, n_genes=100, seed=0)
    del mdata.obs["distinguished_by"]
    with pytest.raises(KeyError, match="distinguished_by.*simulated_cite"):
        add_expected_theta_sign(mdata)
    assert "expected_theta_sign" not in mdata.obs


def test_the_command_line_starts_without_torch_or_scvi_tools():
    """``indiseek --help`` and argument errors answer at once: the package loads its subpackages on first use."""
    code = (
        "import sys, indiseek\n"
        "from indiseek.cli import _parser\n"
        "_parser()\n"
        "heavy = sorted(m for m in ('torch', 'scvi', 'scanpy', 'muon', 'lightning') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert indiseek.tl.fit and indiseek.IndiSeek.__name__ == 'IndiSeek' and 'torch' in sys.modules\n"
        "assert {'IndiSeek', 'tl', 'pp', 'pl'} <= set(dir(indiseek))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        isk.fitt  # noqa: B018


def test_fit_draws_no_progress_bar_into_a_log_file(tmp_path, capfd):
    """Without a terminal on stderr (a log file, a pipe, a batch job) ``indiseek fit`` draws no progress bar."""
    argv = ["fit", "-o", str(tmp_path / "sim.h5mu"), "--n-cells", "200", "--n-comps", "10"]
    assert main([*argv, "--max-epochs-shared", "2", "--max-epochs-specific", "2"]) == 0
    out, err = capfd.readouterr()
    assert "Wrote" in out
    assert "Epoch" not in out + err and "\r" not in err
    assert "n_layers=2, dropout=0.2" in out and "chosen on the validation cells" in out  # the settings it ran with
    assert logging.root.manager.disable == logging.NOTSET  # the command's quieting of INFO logs ends with it


def test_fit_keeps_lightnings_notes_off_the_terminal(tmp_path):
    """A fresh ``indiseek fit`` (Lightning imported after the command starts, which resets its loggers to INFO)
    prints no device report, tips, "Seed set" or stopping notes: only the command's own lines."""
    argv = ["fit", "-o", str(tmp_path / "sim.h5mu"), "--n-cells", "200", "--n-comps", "10"]
    argv += ["--max-epochs-shared", "2", "--max-epochs-specific", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "indiseek.cli", *argv], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stdout
    for note in ("GPU available", "Tip", "Seed set", "max_epochs"):
        assert note not in result.stdout + result.stderr, note
