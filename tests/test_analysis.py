import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import indiseek as isk


def _mudata(labels, **obsm):
    n = len(labels)
    names = [f"c{i}" for i in range(n)]
    mdata = md.MuData({"rna": ad.AnnData(np.zeros((n, 1)), obs=pd.DataFrame(index=names))})
    mdata.obs["type"] = pd.Categorical(labels)
    for key, value in obsm.items():
        mdata.obsm[key] = np.asarray(value, dtype=float)
    return mdata


def test_theta_on_a_hand_countable_embedding():
    # labels a a a b b b; in Z_rna the a's and b's form two tight groups, in Z_prot they alternate on a line
    labels = list("aaabbb")
    z_rna = [[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]]
    z_prot = [[0, 0], [3, 0], [6, 0], [1, 0], [4, 0], [7, 0]]  # positions 0,3,6 (a) and 1,4,7 (b)
    mdata = _mudata(labels, X_indiseek_specific_rna=z_rna, X_indiseek_specific_prot=z_prot)
    isk.tl.theta_score(mdata, "type", n_neighbors=2, use_rep=("X_indiseek_specific_rna", "X_indiseek_specific_prot"))
    # Z_rna: both neighbours share the label for every cell -> beta_rna = 1
    np.testing.assert_array_equal(mdata.obs["indiseek_theta_beta_rna"], 1.0)
    # Z_prot, 2 nearest on the line 0a 1b 3a 4b 6a 7b:
    #   0a -> 1b, 3a : 1 | 3a -> 4b, 1b : 0 | 6a -> 7b, 4b : 0 | 1b -> 0a, 3a : 0 | 4b -> 3a, 6a : 0 | 7b -> 6a, 4b : 1
    expected_same = np.array([1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(mdata.obs["indiseek_theta_beta_prot"], expected_same / 2)
    np.testing.assert_allclose(mdata.obs["indiseek_theta"], np.log((2 + 1) / (expected_same + 1)))
    table = mdata.uns["indiseek_theta"]
    assert table.loc["a", "n_cells"] == 3
    np.testing.assert_allclose(table.loc["a", "theta"], np.mean(np.log(3 / (np.array([1, 0, 0]) + 1))))
    # without the pseudocount a zero count gives an infinite score, as log(beta_rna / beta_prot) does
    isk.tl.theta_score(
        mdata,
        "type",
        n_neighbors=2,
        pseudocount=0.0,
        key_added="raw",
        use_rep=("X_indiseek_specific_rna", "X_indiseek_specific_prot"),
    )
    assert np.isinf(mdata.obs["raw"].to_numpy()[1]) and mdata.obs["raw"].to_numpy()[0] == pytest.approx(np.log(2))


def test_theta_errors_and_singletons():
    z = np.random.default_rng(0).normal(size=(6, 2))
    keys = ("X_indiseek_specific_rna", "X_indiseek_specific_prot")
    mdata = _mudata(list("aaabbc"), X_indiseek_specific_rna=z, X_indiseek_specific_prot=z)
    with pytest.warns(UserWarning, match=r"\['c'\] have a single cell"):
        isk.tl.theta_score(mdata, "type", n_neighbors=2, use_rep=keys)
    assert np.isnan(mdata.obs["indiseek_theta"].to_numpy()[5]) and "c" not in mdata.uns["indiseek_theta"].index
    with pytest.raises(ValueError, match="Too few cells \\(6\\) for `n_neighbors=6`"):
        isk.tl.theta_score(mdata, "type", n_neighbors=6, use_rep=keys)
    mdata.obs["gappy"] = pd.Categorical(["a", None, "a", "b", "b", "b"])
    with pytest.raises(ValueError, match="1 missing label"):
        isk.tl.theta_score(mdata, "gappy", use_rep=keys, n_neighbors=2)
    with pytest.raises(KeyError, match="`groupby='celltype'` is not a column"):
        isk.tl.theta_score(mdata, "celltype", use_rep=keys)
    with pytest.raises(KeyError, match="write_representations"):
        isk.tl.theta_score(mdata, "type")


def test_spearman_on_known_orderings():
    labels = np.repeat(list("abcde"), 6)
    mdata = _mudata(labels)
    mdata.obs["indiseek_theta"] = np.repeat([2.0, 1.0, 0.5, 0.0, -1.0], 6)
    mdata.obs["rna:mod_weight"] = np.repeat([0.5, 0.9, 0.4, 0.3, 0.1], 6)  # ranks 2 1 3 4 5 against 1 2 3 4 5
    isk.tl.rank_agreement(mdata, "type")
    result = mdata.uns["indiseek_rank_agreement"]
    assert result["rho"] == pytest.approx(1 - 6 * 2 / (5 * (25 - 1)))  # 1 - 6 sum d^2 / (n (n^2 - 1)) = 0.9
    assert result["table"]["rank_weight"].tolist() == [2.0, 1.0, 3.0, 4.0, 5.0]
    mdata.obs["rna:mod_weight"] = -mdata.obs["rna:mod_weight"] * 0 - mdata.obs["indiseek_theta"]
    isk.tl.rank_agreement(mdata, "type")
    assert mdata.uns["indiseek_rank_agreement"]["rho"] == pytest.approx(-1.0)


def test_rank_agreement_leaves_out_small_labels():
    labels = ["a"] * 6 + ["b"] * 6 + ["c"] * 6 + ["d"] * 2
    mdata = _mudata(labels)
    mdata.obs["indiseek_theta"] = np.repeat([1.0, 0.0, -1.0, 5.0], [6, 6, 6, 2])
    mdata.obs["rna:mod_weight"] = np.repeat([0.9, 0.5, 0.1, 0.0], [6, 6, 6, 2])
    isk.tl.rank_agreement(mdata, "type", min_cells=5)
    result = mdata.uns["indiseek_rank_agreement"]
    assert result["left_out"] == ["d"] and result["n_labels"] == 3 and result["rho"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rank correlation needs 3"):
        isk.tl.rank_agreement(mdata, "type", min_cells=7)
    with pytest.raises(KeyError, match="wnn"):
        isk.tl.rank_agreement(mdata, "type", weight_key="prot:mod_weight")


def test_cluster_agreement_on_separated_and_random_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(list("abc"), 30)
    separated = np.repeat([[0, 0], [20, 0], [0, 20]], 30, axis=0) + rng.normal(size=(90, 2))
    mdata = _mudata(labels, good=separated, noise=rng.normal(size=(90, 2)))
    isk.tl.cluster_agreement(mdata, "type", use_rep=["good", "noise"])
    table = mdata.uns["indiseek_cluster_agreement"]
    assert table.loc["good", "ari"] == pytest.approx(1.0) and table.loc["good", "nmi"] == pytest.approx(1.0)
    assert abs(table.loc["noise", "ari"]) < 0.1


def test_theta_sign_follows_the_modality_that_splits_each_type(trained):
    """Paper protocol: nets trained on training cells, theta on held-out cells."""
    model, mdata, _, held_out = trained
    cells = mdata[held_out].copy()
    isk.tl.write_representations(model, cells)
    isk.tl.theta_score(cells, "cell_type")
    cells.obs["lineage_by"] = cells.obs["distinguished_by"].astype(str)
    by = cells.obs.groupby("lineage_by")["indiseek_theta"].mean()
    per_type = cells.uns["indiseek_theta"]["theta"]
    print("mean theta by the factor group that splits the type:", by.round(3).to_dict())
    print("per type:", per_type.round(3).to_dict())
    assert by["rna"] > 0.3 and by["prot"] < -0.3
    for t in ("B1", "B2", "B3"):
        assert per_type[t] > 0
    for t in ("C1", "C2", "C3"):
        assert per_type[t] < 0


def test_approximate_neighbours_match_exact_ones_on_clustered_data():
    from indiseek.tl._neighbors import nearest_neighbors
    from indiseek.tl._theta import same_label_counts

    rng = np.random.default_rng(0)
    labels = rng.integers(4, size=3000)
    x = rng.normal(size=(3000, 20)) + 3 * np.eye(20)[labels] + 0.3 * rng.normal(size=(3000, 20))
    exact = nearest_neighbors(x, 11, "exact")
    approximate = nearest_neighbors(x, 11, "approximate")
    overlap = np.mean([len(set(a) & set(b)) / 11 for a, b in zip(exact, approximate, strict=True)])
    assert overlap > 0.9
    counts = {m: same_label_counts(x, labels, 10, m) for m in ("exact", "approximate")}
    beta = {m: c / 10 for m, c in counts.items()}
    assert np.abs(beta["exact"] - beta["approximate"]).mean() < 0.03  # per cell, beta within about 0.02
    for k in range(4):  # per label, the mean beta that theta's per-type table uses agrees closely
        assert abs(beta["exact"][labels == k].mean() - beta["approximate"][labels == k].mean()) < 0.02
    with pytest.raises(ValueError, match="approximate"):
        nearest_neighbors(x, 5, "annoy")
