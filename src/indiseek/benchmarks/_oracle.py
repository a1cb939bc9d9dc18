"""Stage 2 of IndiSeek for one modality with its shared features given (the oracle case of the paper's study)."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from indiseek._validation import check_finite
from indiseek.model import IndiSeekModule, specific_step


def train_oracle_specific(
    x: np.ndarray,
    shared: np.ndarray,
    *,
    objective: str = "indiseek",
    lam: float = 0.1,
    n_specific: int = 10,
    n_hidden: int = 100,
    n_layers: int = 5,
    n_estimator_layers: int = 2,
    estimator: str = "mlp",
    max_epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    n_estimator_steps: int = 5,
    standardize_specific: bool = True,
    seed: int = 0,
) -> IndiSeekModule:
    r"""Train the specific encoder :math:`h_1` of one modality given oracle shared features :math:`C_1`.

    This isolates stage 2, as in the paper's synthetic study: the networks and the objective's terms are those of
    :class:`~indiseek.model.IndiSeekModule`, and every step is the training plan's own
    :func:`~indiseek.model.specific_step` (``n_estimator_steps`` estimator steps, each on a fresh random batch, per
    encoder step; or one closed-form refit for ``estimator="moments"``), run over batches of modality 0 only. The given
    :math:`C_1` stands for both the modality's own and the other modality's shared features, so ``"indiseek"`` and
    ``"indiseek_noswitch"`` coincide here.

    Parameters
    ----------
    x
        The modality, shape ``(n, d)``.
    shared
        Its oracle shared features, shape ``(n, d_c)``.
    objective
        ``"indiseek"``, ``"indiseek_noswitch"``, ``"factorcl"`` or ``"infodisen"``.
    lam
        :math:`\lambda`, the weight of the completeness term.
    n_specific, n_hidden, n_layers, n_estimator_layers, estimator
        Network sizes and CLUB estimator (the paper: :math:`p_1 = 10`, 5-layer ReLU MLPs of width 100).
    max_epochs, batch_size, lr, n_estimator_steps
        Schedule: epochs over ``x``, samples per batch, Adam learning rate, estimator steps per encoder step.
    standardize_specific
        Batch-normalise :math:`Z_1` (as :class:`~indiseek.IndiSeek` does by default).
    seed
        Seed of the weights and the batches.

    Returns
    -------
    The trained module in evaluation mode; ``module.specific(x, 0)`` is :math:`h_1`.

    Examples
    --------
    >>> import torch
    >>> import indiseek as isk
    >>> from indiseek.benchmarks import train_oracle_specific
    >>> x, shared = isk.datasets.paper_setting(1, n=512, seed=0)
    >>> module = train_oracle_specific(x, shared, max_epochs=1, n_hidden=16)
    >>> module.specific(torch.as_tensor(x[:3]), 0).shape
    torch.Size([3, 10])
    """
    x, shared = np.asarray(x, dtype=np.float32), np.asarray(shared, dtype=np.float32)
    if x.ndim != 2 or shared.ndim != 2 or len(x) != len(shared):
        raise ValueError(
            f"`x` and `shared` must be 2-d arrays with one row per sample; got shapes {x.shape} and {shared.shape}."
        )
    check_finite(x, "`x`")
    check_finite(shared, "`shared`")
    if objective == "clip":
        raise ValueError("The CLIP-only baseline has no stage 2; choose another objective.")
    if len(x) < 2 * batch_size:
        raise ValueError(f"Need at least 2 batches of {batch_size} samples, got {len(x)} samples.")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    module = IndiSeekModule(
        x.shape[1],
        x.shape[1],
        n_shared=shared.shape[1],
        n_specific=n_specific,
        n_hidden=n_hidden,
        n_layers=n_layers,
        n_estimator_layers=n_estimator_layers,
        lam=lam,
        objective=objective,
        estimator=estimator,
        standardize_specific=standardize_specific,
    )
    xt, ct = torch.as_tensor(x), torch.as_tensor(shared)
    module.set_input_scale(xt, xt)
    main = torch.optim.Adam(module.specific_parameters(modalities=(0,)), lr=lr)
    est_opt = torch.optim.Adam(module.estimator_parameters(modalities=(0,)), lr=lr) if module.trains_estimator else None
    n_steps = n_estimator_steps if len(module.estimators) else 0
    n = len(x)
    module.train()
    for _ in range(max_epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):  # full batches only
            # one oracle stands for both C_1 and C_2; without "x2" in the batches, only modality 0 trains
            batch = _oracle_batch(xt, ct, order[start : start + batch_size])
            draws = torch.randint(n, (n_steps, batch_size), generator=generator) if n_steps else []
            fresh = [_oracle_batch(xt, ct, f) for f in draws]
            specific_step(module, batch, fresh, main, est_opt, check=partial(_check_finite, objective=objective))
    return module.eval()


def _oracle_batch(x: torch.Tensor, c: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"x1": x[idx], "c1": c[idx], "c2": c[idx]}


def _check_finite(terms: dict[str, torch.Tensor], objective: str) -> None:
    if not all(torch.isfinite(v) for v in terms.values()):
        raise FloatingPointError(f"The {objective!r} loss became non-finite; lower `lr`.")
