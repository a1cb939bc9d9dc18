"""``indiseek map``: a query's representations, imputed modality and labels from a saved model."""

import logging

import mudata as md
import numpy as np
import pytest

import indiseek as isk
from indiseek.cli import main

FAST = ["--n-comps", "10", "--max-epochs-shared", "2", "--max-epochs-specific", "2", "--batch-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A reference fitted by ``indiseek fit --save-model`` and an RNA-only query of other simulated cells."""
    folder = tmp_path_factory.mktemp("map")
    isk.datasets.simulated_cite(n_cells=200, n_genes=60, n_proteins=10, seed=0).write_h5mu(folder / "ref_in.h5mu")
    query = isk.datasets.simulated_cite(n_cells=50, n_genes=60, n_proteins=10, seed=1)
    md.MuData({"rna": query["rna"].copy()}).write_h5mu(folder / "query.h5mu")
    query["rna"].write_h5ad(folder / "query_rna.h5ad")
    args = ["fit", folder / "ref_in.h5mu", "-o", folder / "ref.h5mu", "--save-model", folder / "model", *FAST]
    assert main([str(a) for a in args]) == 0
    return folder


def test_map_writes_representations_imputation_and_labels(fitted, capsys):
    out = fitted / "mapped.h5mu"
    args = ["map", fitted / "model", fitted / "query.h5mu", "-o", out, "--reference", fitted / "ref.h5mu"]
    assert main([str(a) for a in [*args, "--labels", "cell_type", "--n-neighbors", "5"]]) == 0
    mapped = md.read_h5mu(out)
    assert sorted(k for k in mapped.obsm if k.startswith("X_")) == ["X_indiseek_shared_rna", "X_indiseek_specific_rna"]
    assert mapped["prot_imputed"].shape == (50, 10) and "std" in mapped["prot_imputed"].layers
    assert mapped["prot_imputed"].uns["indiseek_imputed"]["n_neighbors"] == 5
    assert set(mapped.obs["cell_type_predicted"]) <= set(md.read_h5mu(fitted / "ref.h5mu").obs["cell_type"])
    assert np.all(mapped.obs["cell_type_predicted_confidence"] > 0)
    printed = capsys.readouterr().out
    assert "from X_indiseek_shared_rna" in printed
    types = mapped.obs["cell_type_predicted"].nunique()
    confidence = np.median(mapped.obs["cell_type_predicted_confidence"])
    assert f"Labels: {types} of the reference's" in printed and f"median confidence {confidence:.2f}" in printed


def test_map_takes_an_h5ad_of_one_modality_named_by_modality(fitted):
    """An RNA-only .h5ad (``--modality rna``) is mapped as the same cells in an .h5mu are."""
    args = ["map", fitted / "model", fitted / "query_rna.h5ad", "-o", fitted / "from_h5ad.h5mu"]
    assert main([str(a) for a in [*args, "--reference", fitted / "ref.h5mu", "--modality", "rna"]]) == 0
    args = ["map", fitted / "model", fitted / "query.h5mu", "-o", fitted / "from_h5mu.h5mu"]
    assert main([str(a) for a in [*args, "--reference", fitted / "ref.h5mu"]]) == 0
    from_h5ad, from_h5mu = md.read_h5mu(fitted / "from_h5ad.h5mu"), md.read_h5mu(fitted / "from_h5mu.h5mu")
    assert list(from_h5ad.mod) == ["rna", "prot_imputed"]
    for key in ("X_indiseek_shared_rna", "X_indiseek_specific_rna"):
        np.testing.assert_allclose(from_h5ad.obsm[key], from_h5mu.obsm[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_h5ad["prot_imputed"].X, from_h5mu["prot_imputed"].X, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.__setitem__(2, a[2].replace("query.h5mu", "query_rna.h5ad")), "name it with --modality"),
        (
            lambda a: (
                a.__setitem__(2, a[2].replace("query.h5mu", "query_rna.h5ad")),
                a.extend(["--modality", "atac"]),
            ),
            "--modality 'atac' is not one of the model's modalities",
        ),
        (lambda a: a.extend(["--modality", "rna"]), "--modality is for an .h5ad of one modality"),
        (lambda a: a.__setitem__(1, "nowhere"), "holds no saved model"),
        (lambda a: a.extend(["--labels", "typo"]), "--labels 'typo' is not a column"),
        (lambda a: a.__setitem__(2, "missing.h5mu"), "does not exist"),
        (lambda a: a.extend(["--n-neighbors", "0"]), "`n_neighbors` must be a positive integer"),
    ],
)
def test_map_refuses_mistakes_in_one_line_and_writes_nothing(fitted, capsys, change, message):
    out = fitted / "never.h5mu"
    args = [
        "map",
        str(fitted / "model"),
        str(fitted / "query.h5mu"),
        "-o",
        str(out),
        "--reference",
        str(fitted / "ref.h5mu"),
    ]
    change(args)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_map_keeps_the_dependencies_notes_off_the_terminal(fitted, capfd, monkeypatch):
    """scvi-tools' note that the saved model's file is "already downloaded" does not reach the user."""
    import scvi

    monkeypatch.setattr(scvi.settings, "verbosity", logging.INFO)  # scvi-tools' default; --quiet fits lower it
    args = ["map", fitted / "model", fitted / "query.h5mu", "-o", fitted / "quiet.h5mu"]
    assert main([str(a) for a in [*args, "--reference", fitted / "ref.h5mu"]]) == 0
    out, err = capfd.readouterr()
    assert "Wrote" in out
    assert "downloaded" not in out + err  # rich may wrap "already downloaded" over two lines
