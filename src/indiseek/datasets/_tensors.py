"""Paired tensors with a known shared block and one specific block per modality (flat or sequences)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from mudata import MuData

from indiseek._sequences import step_indicators
from indiseek.data import from_arrays

#: The labels of :func:`paired_tensors`: one driven by the shared latent block, one by each specific block.
TENSOR_LABELS = ("shared", "specific1", "specific2")
_SPLIT = {"train": 0.7, "valid": 0.1, "test": 0.2}


def _mix(latent: np.ndarray, n_out: int, nonlinear: bool, rng: np.random.Generator) -> np.ndarray:
    """A random map of the latents to ``n_out`` features: linear, or a random 2-layer tanh network."""
    n_in = latent.shape[1]
    if not nonlinear:
        return latent @ rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
    hidden = np.tanh(latent @ rng.normal(size=(n_in, 4 * n_out)) * 1.5 / np.sqrt(n_in))
    return hidden @ rng.normal(size=(4 * n_out, n_out)) / np.sqrt(4 * n_out)


def paired_tensors(
    n: int = 3_000,
    *,
    mixing: Literal["linear", "nonlinear"] = "linear",
    layout: Literal["flat", "sequence"] = "flat",
    n_latent: int = 4,
    n_features: int = 20,
    n_steps: int = 8,
    noise: float = 0.1,
    seed: int = 0,
) -> MuData:
    r"""Two paired modalities with a known shared block and one specific block each, and one label per block.

    Latent blocks :math:`s` (shared), :math:`u_1`, :math:`u_2` (specific) are drawn from :math:`N(0, I)` with
    ``n_latent`` coordinates each. Modality :math:`i` is a random map of :math:`(s, u_i)` (``"linear"``, or
    ``"nonlinear"``: a random 2-layer tanh network) to ``n_features`` features plus Gaussian noise. With
    ``layout="sequence"`` each modality is a sequence of ``n_steps`` steps, each step its own random map of the
    latents, and each sample's length is drawn uniformly from ``n_steps // 2`` to ``n_steps`` (end padding with
    zeros). The labels are ``obs["shared"]`` :math:`= 1\{s_1 + s_2 > 0\}`, ``obs["specific1"]`` (the same on
    :math:`u_1`) and ``obs["specific2"]`` (on :math:`u_2`): the shared label is readable from either modality, each
    specific label from its own modality only. ``obs["split"]`` holds a 70/10/20 train/valid/test split.

    Parameters
    ----------
    n
        Samples.
    mixing
        ``"linear"`` or ``"nonlinear"`` maps from latents to features.
    layout
        ``"flat"`` (``(n, n_features)`` arrays) or ``"sequence"`` (``(n, n_steps, n_features)``).
    n_latent
        Coordinates per latent block.
    n_features
        Features per modality (per time step for sequences).
    n_steps
        Time steps of the sequence layout.
    noise
        Standard deviation of the additive noise.
    seed
        Seed of the latents, maps, noise, lengths and split.

    Returns
    -------
    MuData from :func:`indiseek.data.from_arrays` with modalities ``"x1"``, ``"x2"``; the latent blocks are in
    ``uns["latents"]``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.paired_tensors(200, layout="sequence", seed=0)
    >>> mdata["x1"].shape, [c for c in ("shared", "specific1", "specific2", "split") if c in mdata.obs]
    ((200, 160), ['shared', 'specific1', 'specific2', 'split'])
    """
    if mixing not in ("linear", "nonlinear") or layout not in ("flat", "sequence"):
        raise ValueError(
            f'`mixing` must be "linear"/"nonlinear" and `layout` "flat"/"sequence"; got {mixing}, {layout}.'
        )
    rng = np.random.default_rng(seed)
    blocks = {name: rng.normal(size=(n, n_latent)) for name in ("s", "u1", "u2")}
    nonlinear = mixing == "nonlinear"
    arrays, lengths = [], []
    for i in (1, 2):
        latent = np.hstack([blocks["s"], blocks[f"u{i}"]])
        if layout == "flat":
            x = _mix(latent, n_features, nonlinear, rng)
            x += noise * rng.normal(size=x.shape)
            arrays.append(x)
            lengths.append(None)
        else:
            x = np.stack([_mix(latent, n_features, nonlinear, rng) for _ in range(n_steps)], axis=1)
            x += noise * rng.normal(size=x.shape)
            length = rng.integers(n_steps // 2, n_steps + 1, size=n)
            arrays.append(x * step_indicators(length, n_steps, "end")[:, :, None])
            lengths.append(length)
    labels = {
        name: (blocks[key][:, :2].sum(axis=1) > 0).astype(int) for name, key in zip(TENSOR_LABELS, blocks, strict=True)
    }
    split = rng.choice(list(_SPLIT), size=n, p=list(_SPLIT.values()))
    mdata = from_arrays(*arrays, labels=labels, lengths=lengths, split=split)
    mdata.uns["latents"] = blocks
    return mdata
