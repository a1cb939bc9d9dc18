"""Masking feature importance of a learned representation map (the paper's appendix A.1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch


def _as_function(encoder, modality, kind) -> tuple[Callable[[torch.Tensor], torch.Tensor], int | None, list | None]:
    """A batch function of the encoder, its input dimension and feature names where they are known."""
    from indiseek.model import IndiSeek, IndiSeekModule

    if isinstance(encoder, IndiSeek):
        i = encoder._modality_index(modality)
        module = encoder.module
        info = encoder.input_features_[encoder.modality_names[i]]
        names = None if "obsm_key" in info else info["var_names"]
        encoder = module
    else:
        i, names = (modality if isinstance(modality, int) else 0), None
    if isinstance(encoder, IndiSeekModule):
        if kind == "specific" and not encoder.has_specific:
            raise ValueError('The CLIP-only baseline has no specific representation; use kind="shared".')
        method = encoder.specific if kind == "specific" else encoder.shared
        return (lambda x: method(x, i)), encoder.n_inputs[i], names
    if callable(encoder):
        return encoder, None, None
    raise TypeError(
        f"`encoder` must be an IndiSeek model, an IndiSeekModule or a callable, got {type(encoder).__name__}."
    )


@torch.no_grad()
def feature_importance(
    encoder,
    *,
    modality: str | int = 0,
    kind: Literal["specific", "shared"] = "specific",
    n_features: int | None = None,
    points: np.ndarray | None = None,
    n_points: int = 1000,
    bounds: tuple[float, float] = (-10.0, 10.0),
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
) -> pd.Series:
    r"""Masking importance of each input coordinate for a representation map :math:`\psi` (paper, appendix A.1).

    For :math:`M` points :math:`x_m`, drawn uniformly from ``bounds``:sup:`d` (or given as ``points``), and each
    coordinate :math:`j`, :math:`x_{m,-j}` is :math:`x_m` with coordinate :math:`j` set to 0 and

    .. math::
        \zeta(j) = \frac1M \sum_m \|\psi(x_m) - \psi(x_{m,-j})\|^2,

    normalised to sum to 1. The map runs in evaluation mode (batch normalisation uses its running statistics).

    Parameters
    ----------
    encoder
        A trained :class:`~indiseek.IndiSeek`, an :class:`~indiseek.model.IndiSeekModule`, or any callable that
        maps a float32 tensor of shape ``(M, d)`` to a tensor of shape ``(M, p)``.
    modality
        The modality whose map is scored (name or 0/1; ``int`` only for a module).
    kind
        ``"specific"`` (:math:`h_i`) or ``"shared"`` (:math:`f_i`).
    n_features
        Input dimension :math:`d` (needed for a plain callable without ``points``).
    points
        Points to mask, shape ``(M, d)``, e.g. held-out samples, instead of uniform draws.
    n_points
        :math:`M` (the paper: 1,000).
    bounds
        Range of the uniform draws (the paper: :math:`[-10, 10]`). Inputs are in the units the model reads.
    feature_names
        Index of the result (default: the model's feature names, else ``1..d``, 1-based as in the paper).
    seed
        Seed of the uniform draws.

    Returns
    -------
    Importance per input coordinate, non-negative and summing to 1 (all zero for a constant map).

    Examples
    --------
    >>> import torch
    >>> import indiseek as isk
    >>> isk.tl.feature_importance(lambda x: x[:, [2, 3]] * torch.tensor([1.0, 2.0]), n_features=4).round(2).tolist()
    [0.0, 0.0, 0.2, 0.8]
    """
    function, d, names = _as_function(encoder, modality, kind)
    module = getattr(encoder, "module", encoder)
    was_training = getattr(module, "training", None)
    if isinstance(module, torch.nn.Module):
        module.eval()
    device = (
        next((p.device for p in module.parameters()), torch.device("cpu")) if hasattr(module, "parameters") else "cpu"
    )
    try:
        if points is None:
            d = d if d is not None else n_features
            if d is None:
                raise ValueError("Pass `n_features` (the input dimension) or `points` for a plain callable.")
            if not (n_points >= 1 and bounds[0] < bounds[1]):
                raise ValueError(f"Need `n_points >= 1` and `bounds[0] < bounds[1]`; got {n_points}, {bounds}.")
            rng = np.random.default_rng(seed)
            points = rng.uniform(bounds[0], bounds[1], size=(n_points, d))
        x = torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)
        if x.ndim != 2 or (d is not None and x.shape[1] != d):
            raise ValueError(f"`points` must have shape (M, {d}), got {tuple(x.shape)}.")
        reference = function(x)
        zeta = np.empty(x.shape[1])
        for j in range(x.shape[1]):
            masked = x.clone()
            masked[:, j] = 0.0
            zeta[j] = float(((function(masked) - reference) ** 2).sum(dim=1).mean())
    finally:
        if was_training is not None:
            module.train(was_training)
    total = zeta.sum()
    importance = zeta / total if total > 0 else np.zeros_like(zeta)
    index = feature_names if feature_names is not None else names
    if index is None or len(index) != len(importance):
        index = np.arange(1, len(importance) + 1)
    return pd.Series(importance, index=pd.Index(index, name="feature"), name="importance")
