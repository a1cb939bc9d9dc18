"""The generic tensor adapter, sequence encoder, MultiBench readers, linear probe and tensor benchmark."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pandas as pd
import pytest
import torch

import indiseek as isk
from indiseek._sequences import step_indicators
from indiseek.model import IndiSeekModule
from indiseek.model._trainingplan import specific_terms
from indiseek.nn import SequenceEncoder

FAST = {"max_epochs_shared": 2, "max_epochs_specific": 1, "n_hidden": 8, "n_layers": 2, "enable_progress_bar": False}


def _sequences(n=60, n_steps=5, n_features=3, seed=0, padding="end"):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, n_steps + 1, size=n)
    x = rng.normal(size=(n, n_steps, n_features)) * step_indicators(lengths, n_steps, padding)[:, :, None]
    return x, lengths


# ----------------------------------------------------------------------------------------------- from_arrays
def test_from_arrays_stores_flat_and_sequence_modalities_exactly():
    x1, lengths = _sequences()
    x2 = torch.arange(120.0).reshape(60, 2)  # torch input
    mdata = isk.data.from_arrays(
        x1, x2, labels={"a": np.arange(60) % 2, "b": list("xy") * 30}, names=("seq", "flat"), lengths=(lengths, None)
    )
    assert mdata["seq"].shape == (60, 15) and mdata["flat"].shape == (60, 2)
    assert mdata["seq"].var_names[:4].tolist() == ["seq_t0_0", "seq_t0_1", "seq_t0_2", "seq_t1_0"]
    assert mdata["seq"].uns["indiseek_sequence"] == {"n_steps": 5, "n_features": 3, "padding": "end"}
    np.testing.assert_array_equal(mdata["seq"].obs["length"], lengths)
    np.testing.assert_array_equal(mdata["flat"].X, x2.numpy())
    assert mdata.obs["b"].tolist()[:3] == ["x", "y", "x"]
    back, back_lengths = isk.data.to_arrays(mdata, "seq")
    np.testing.assert_array_equal(back, x1.astype(np.float32))
    np.testing.assert_array_equal(back_lengths, lengths)
    assert isk.data.to_arrays(mdata, "flat")[1] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x2": np.zeros((59, 2))}, "not paired"),
        ({"x2": np.full((60, 2), np.nan)}, "NaN"),
        ({"x2": np.zeros((60,))}, "must have shape"),
        ({"lengths": (np.full(60, 6), None)}, r"lie in \[1, 5\]"),
        ({"lengths": (np.full(60, 2), None)}, "non-zero values in .* padded"),
        ({"lengths": (None, np.ones(60))}, "not a sequence"),
        ({"labels": np.arange(3)}, "one entry per sample"),
        ({"names": ("a", "a")}, "two different"),
    ],
)
def test_from_arrays_refuses_bad_input(kwargs, match):
    x1, _ = _sequences()
    args = {"x1": np.random.default_rng(1).normal(size=(60, 5, 3)), "x2": np.ones((60, 2))} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        isk.data.from_arrays(args.pop("x1"), args.pop("x2"), **args)


# ----------------------------------------------------------------------------------------------- encoder
def _packed(x, lengths, padding):
    n, n_steps, n_features = x.shape
    flat = torch.as_tensor(x.reshape(n, -1), dtype=torch.float32)
    return torch.cat([flat, torch.as_tensor(step_indicators(lengths, n_steps, padding))], dim=1)


def test_sequence_encoder_ignores_padding_and_its_position():
    torch.manual_seed(0)
    encoder = SequenceEncoder(n_steps=5, n_features=3, n_output=4, d_model=8).eval()
    x, lengths = _sequences(n=8)
    out = encoder(_packed(x, lengths, "end"))
    noisy = x + 100 * (step_indicators(lengths, 5, "end") == 0)[:, :, None]  # garbage in the padded steps
    torch.testing.assert_close(encoder(_packed(noisy, lengths, "end")), out)
    front = np.stack([np.roll(xi, 5 - k, axis=0) for xi, k in zip(x, lengths, strict=True)])  # same steps, padded first
    torch.testing.assert_close(encoder(_packed(front, lengths, "start")), out, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(encoder(_packed(x[:, ::-1].copy() * 1.0, np.full(8, 5), "end")), out)
    with pytest.raises(ValueError, match="packed sequences"):
        encoder(torch.zeros(2, 15))


def test_transformer_encoder_takes_the_module_dropout_in_training_only():
    torch.manual_seed(0)
    module = IndiSeekModule(
        15, 2, n_hidden=8, n_layers=2, encoder="transformer", sequence_shapes=((5, 3), None), dropout=0.3
    )
    layers = module.shared_encoders[0].transformer.layers
    assert [layer.dropout.p for layer in layers] == [0.3, 0.3]
    x, lengths = _sequences(n=8)
    packed = _packed(x, lengths, "end")
    module.set_input_scale(packed, torch.ones(8, 2))
    module.train()
    assert not torch.allclose(module.specific(packed, 0), module.specific(packed, 0))
    module.eval()
    torch.testing.assert_close(module.shared(packed, 0), module.shared(packed, 0))


def test_reconstruction_term_counts_valid_steps_only():
    torch.manual_seed(0)
    module = IndiSeekModule(15, 2, n_hidden=8, n_layers=2, encoder="transformer", sequence_shapes=((5, 3), None))
    x, lengths = _sequences(n=16)
    packed = _packed(x, lengths, "end")
    module.set_input_scale(packed, torch.ones(16, 2))
    module.eval()
    c = torch.nn.functional.normalize(torch.randn(16, 50), dim=1)
    recon = specific_terms(module, {"x1": packed, "c1": c, "c2": c})["recon_x1"]
    garbage = _packed(x + 50 * (step_indicators(lengths, 5, "end") == 0)[:, :, None], lengths, "end")
    recon_garbage = specific_terms(module, {"x1": garbage, "c1": c, "c2": c})["recon_x1"]
    torch.testing.assert_close(recon_garbage, recon)
    with pytest.raises(ValueError, match="has 15 values, not 12"):
        IndiSeekModule(12, 2, sequence_shapes=((5, 3), None))


# ----------------------------------------------------------------------------------------------- model
def test_model_trains_on_sequences_saves_loads_and_embeds_new_samples(tmp_path):
    x1, lengths = _sequences(n=80)
    x2 = np.random.default_rng(2).normal(size=(80, 4))
    mdata = isk.data.from_arrays(x1, x2, names=("seq", "flat"), lengths=(lengths, None))
    model = isk.tl.fit(mdata, encoder="transformer", batch_size=16, seed=0, **FAST)
    assert type(model.module.shared_encoders[0]).__name__ == "SequenceEncoder"
    assert type(model.module.shared_encoders[1]).__name__ == "MLP"
    z = mdata.obsm["X_indiseek_specific_seq"]
    model.save(tmp_path / "model")
    loaded = isk.IndiSeek.load(tmp_path / "model", adata=mdata)
    np.testing.assert_allclose(loaded.get_latent_representation(modality="seq"), z, atol=1e-5)
    # new samples embed the same; the padded values and the storage of padding do not matter
    new = isk.data.from_arrays(x1[:10] * 1.0, x2[:10], names=("seq", "flat"), lengths=(lengths[:10], None))
    np.testing.assert_allclose(model.get_latent_representation(new, modality="seq"), z[:10], atol=1e-5)
    other = isk.data.from_arrays(np.zeros((10, 4, 3)), x2[:10], names=("seq", "flat"))
    with pytest.raises(ValueError, match="other features than|shape"):
        model.get_latent_representation(other, modality="seq")


def test_transformer_encoder_needs_a_sequence_modality():
    mdata = isk.data.from_arrays(np.ones((40, 3)), np.ones((40, 2)))
    with pytest.raises(ValueError, match="neither modality is one"):
        isk.tl.fit(mdata, encoder="transformer", **FAST)


# ----------------------------------------------------------------------------------------------- MultiBench
def _affect_split(rng, n, dims=(20, 5, 300), n_steps=50):
    """A split in the affect pickle format: sequences padded with zeros at the front, labels (n, 1, 1)."""
    starts = rng.integers(0, n_steps, size=n)
    valid = np.arange(n_steps)[None, :] >= starts[:, None]
    block = {}
    for name, d in zip(("vision", "audio", "text"), dims, strict=True):
        block[name] = rng.normal(size=(n, n_steps, d)) * valid[:, :, None]
    block["audio"][0, -1, 0] = -np.inf
    block["text"][1] = 0.0  # dropped, as MultiBench's drop_entry does
    block["labels"] = rng.uniform(-3, 3, size=(n, 1, 1))
    return block, starts


def test_read_multibench_affect_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    splits, starts = {}, {}
    for name, n in (("train", 7), ("valid", 4), ("test", 5)):
        splits[name], starts[name] = _affect_split(rng, n)
    path = tmp_path / "mosi_data.pkl"
    with open(path, "wb") as handle:
        pickle.dump(splits, handle)
    mdata = isk.data.read_multibench(path, "mosi")
    assert mdata.uns["multibench"]["n_dropped"] == {"train": 1, "valid": 1, "test": 1}
    assert mdata.obs["split"].tolist() == ["train"] * 6 + ["valid"] * 3 + ["test"] * 4
    keep = {name: np.r_[0, 2 : len(starts[name])] for name in splits}
    vision, lengths = isk.data.to_arrays(mdata, "vision")
    text, _ = isk.data.to_arrays(mdata, "text")
    np.testing.assert_array_equal(vision, np.concatenate([splits[s]["vision"][keep[s]] for s in splits]).astype("f4"))
    np.testing.assert_array_equal(text, np.concatenate([splits[s]["text"][keep[s]] for s in splits]).astype("f4"))
    np.testing.assert_array_equal(lengths, np.concatenate([50 - starts[s][keep[s]] for s in splits]))
    y = np.concatenate([splits[s]["labels"][keep[s], 0, 0] for s in splits])
    np.testing.assert_array_equal(mdata.obs["label"], (y >= 0).astype(int))
    audio_mdata = isk.data.read_multibench(path, "mosi", modalities=("audio", "text"))
    audio, _ = isk.data.to_arrays(audio_mdata, "audio")
    assert audio[0, -1, 0] == 0.0  # -inf became 0
    assert mdata["vision"].uns["indiseek_sequence"]["padding"] == "start"
    sarcasm = isk.data.read_multibench(path, "mustard")
    np.testing.assert_array_equal(sarcasm.obs["label"], (y >= 1).astype(int))
    with pytest.raises(ValueError, match="Unknown MultiBench dataset"):
        isk.data.read_multibench(path, "imdb")
    with pytest.raises(FileNotFoundError, match="No file"):
        isk.data.read_multibench(tmp_path / "missing.pkl", "mosi")
    with open(tmp_path / "no_test.pkl", "wb") as handle:
        pickle.dump({"train": splits["train"], "valid": splits["valid"]}, handle)
    with pytest.raises(KeyError, match="no 'test' split"):
        isk.data.read_multibench(tmp_path / "no_test.pkl", "mosi")


def test_read_multibench_mimic(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    static, series = rng.normal(3, 2, size=(n, 5)), rng.normal(-1, 4, size=(n, 24, 12))
    static[0, 0] = np.nan
    series[1, 2, 3] = np.inf
    data = {
        "adm_features_all": static.copy(),
        "ep_tdata": series.copy(),
        "y_icd9": rng.integers(2, size=(n, 20)),
        "adm_labels_all": np.zeros((n, 6)),
    }
    data["adm_labels_all"][3, [2, 4]] = 1
    path = tmp_path / "im.pk"
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    mdata = isk.data.read_multibench(path, "mimic")
    static[0, 0], series[1, 2, 3] = 0.0, 0.0
    expected = (static - static.mean(0)) / static.std(0)
    np.testing.assert_allclose(mdata["static"].X, expected, rtol=1e-5, atol=1e-5)
    got_series, _ = isk.data.to_arrays(mdata, "timeseries")
    np.testing.assert_allclose(got_series, (series - series.mean((0, 1))) / series.std((0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mdata.obs["label"], data["y_icd9"][:, 7])
    order = list(range(n))
    random.seed(10)
    random.shuffle(order)
    assert set(np.flatnonzero(mdata.obs["split"] == "valid")) == set(order[:5])
    assert set(np.flatnonzero(mdata.obs["split"] == "test")) == set(order[5:10])
    mortality = isk.data.read_multibench(path, "mimic", task=-1)
    assert mortality.obs["label"].tolist()[3] == 2 and mortality.obs["label"].sum() == 2


# ----------------------------------------------------------------------------------------------- probe + benchmark
def test_linear_probe_refuses_missing_split_and_single_class():
    mdata = isk.data.from_arrays(np.ones((20, 2)), np.ones((20, 2)), labels=np.arange(20) % 2)
    with pytest.raises(KeyError, match="split"):
        isk.tl.linear_probe(mdata, use_rep=["x1"])
    mdata.obs["split"] = ["train"] * 20
    with pytest.raises(ValueError, match="test"):
        isk.tl.linear_probe(mdata, use_rep=["x1"])
    mdata.obs["split"] = ["train"] * 10 + ["test"] * 10
    mdata.obs["label"] = [0] * 10 + [1] * 10
    with pytest.raises(ValueError, match="single class"):
        isk.tl.linear_probe(mdata, use_rep=["x1"])


def test_tensor_benchmark_specific_labels_beat_clip(tmp_path):
    """A small run of `indiseek benchmark tensors`: IndiSeek's (C, Z) makes the specific labels readable; C does not."""
    from indiseek.cli import main

    args = ["benchmark", "tensors", "--layouts", "flat", "--mixings", "linear", "--objectives", "indiseek", "clip"]
    assert main([*args, "--lams", "10", "--seeds", "0", "--epochs", "3", "--n", "1000", "-o", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("objective")
    specific = summary[["specific1", "specific2"]]
    assert (specific.loc["indiseek"] > specific.loc["clip"] + 0.08).all()
    assert abs(summary.loc["indiseek", "shared"] - summary.loc["clip", "shared"]) < 0.05
    assert (summary.loc["raw inputs", ["shared", "specific1", "specific2"]] > 0.9).all()
    assert {"runs.csv", "summary.md", "accuracy.png"} <= {p.name for p in tmp_path.iterdir()}


def test_fit_reads_arrays_named_rna_as_they_are():
    """`prepare="auto"` runs the CITE-seq preparation on counts only, not on arrays that happen to be called rna."""
    rng = np.random.default_rng(0)
    mdata = isk.data.from_arrays(rng.normal(size=(60, 5)), rng.normal(size=(60, 3)), names=("rna", "prot"))
    isk.tl.fit(mdata, batch_size=16, **FAST)
    assert mdata.uns["indiseek"]["inputs"] == {"rna": "X", "prot": "X"}
    assert "X_pca" not in mdata["rna"].obsm
