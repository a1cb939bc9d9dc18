r"""How much of each modality's variance its shared and its specific features explain, and the weights of ``X_indiseek``.

For modality :math:`i` on a set of cells, with :math:`V_i = E\|X_i - \bar X_i\|^2` (in network units):

* **total**: :math:`1 - E\|g_i(Z_i, C_i) - X_i\|^2 / V_i`, what the decoder reconstructs from both;
* **shared**: :math:`1 - E\|\hat g_i(C_i) - X_i\|^2 / V_i`, with :math:`\hat g_i(C_i)` the decoder averaged over
  specific features :math:`Z'` drawn from the training cells, an estimate of :math:`E[X_i \mid C_i]`;
* **specific**: total minus shared, what :math:`Z_i` adds beyond :math:`C_i`.

``X_indiseek`` weights each block by the square root of its share (floored at :data:`MIN_SHARE`, so that no block
vanishes), after scaling the block to a total variance of 1 on the training cells: a block's share of the joint representation's variance is the share of its
modality's variance it explains, and each modality enters through what the model can reconstruct of it.
"""

from __future__ import annotations

import numpy as np
import torch

#: Number of specific features drawn per cell to average the decoder over (the shared share).
N_DRAWS = 16
#: The smallest share a block is weighted by in ``X_indiseek`` (an undertrained decoder can explain nothing).
MIN_SHARE = 0.01
#: At most this many cells are used for the shares and block variances.
MAX_CELLS = 5_000


def _subset(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) <= MAX_CELLS else np.sort(rng.choice(idx, MAX_CELLS, replace=False))


def total_variance(block: torch.Tensor) -> float:
    """Sum over features of the variance across cells (rows) of ``block``."""
    return float((block.double() - block.double().mean(dim=0)).pow(2).sum(dim=1).mean())


@torch.no_grad()
def marginal_decode(
    module,
    c: torch.Tensor,
    z_pool: torch.Tensor,
    i: int,
    n_draws: int,
    generator: torch.Generator,
    to_units=None,
    batch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and standard deviation over ``n_draws`` specific features drawn from ``z_pool`` of :math:`g_i(Z', c)`.

    In network units, or in the units that ``to_units`` maps the decoder's output to (a function of a tensor).
    ``batch``: the cells' one-hot batches, for a model with a batch covariate (``None``: the training frequencies).
    """
    to_units = to_units or (lambda d: d)
    draws = torch.randint(len(z_pool), (n_draws, len(c)), generator=generator)
    total = squares = 0.0
    for d in draws:
        out = to_units(module.decode(z_pool[d.to(z_pool.device)], c, i, batch)).double()
        total, squares = total + out, squares + out**2
    mean = total / n_draws
    return mean.float(), (squares / n_draws - mean**2).clamp(min=0).sqrt().float()


@torch.no_grad()
def explained_variance(
    module,
    x: torch.Tensor,
    c: torch.Tensor,
    z: torch.Tensor,
    z_pool: torch.Tensor,
    i: int,
    seed: int = 0,
    batch: torch.Tensor | None = None,
) -> dict[str, float]:
    """``total``, ``shared`` and ``specific`` shares of modality ``i``'s variance on the cells of ``x``.

    ``c`` and ``z`` are the cells' shared and specific features; ``z_pool`` holds training cells' specific features,
    from which :data:`N_DRAWS` per cell are drawn to average the decoder over. ``batch``: the cells' one-hot
    batches (a model with a batch covariate decodes each cell in its own batch).

    Examples
    --------
    >>> import torch
    >>> from indiseek.model import IndiSeekModule
    >>> module = IndiSeekModule(6, 4, n_hidden=8, n_layers=2, n_shared=3, n_specific=2).eval()
    >>> x = torch.randn(40, 6)
    >>> module.set_input_scale(x, torch.randn(40, 4))
    >>> c, z = module.shared(x, 0), module.specific(x, 0)
    >>> shares = explained_variance(module, x, c, z, z, 0)
    >>> sorted(shares), round(shares["total"] - shares["shared"] - shares["specific"], 6)
    (['shared', 'specific', 'total'], 0.0)
    """
    device = module.input_scale.device
    x, c, z, z_pool = (t.to(device) for t in (x, c, z, z_pool))
    batch = None if batch is None else batch.to(device)
    target = module.scaled(x, i)
    valid = module._valid_values(x, i)
    mask = torch.ones_like(target) if valid is None else valid
    centre = (target * mask).sum(dim=0) / mask.sum(dim=0).clamp(min=1)
    variance = ((target - centre) * mask).pow(2).sum(dim=1).mean()
    error = lambda decoded: float(((decoded - target) * mask).pow(2).sum(dim=1).mean() / variance)
    generator = torch.Generator().manual_seed(seed)
    averaged, _ = marginal_decode(module, c, z_pool, i, N_DRAWS, generator, batch=batch)
    decode = lambda zz: module.decode(zz, c, i, batch)
    total, shared = 1.0 - error(decode(z)), 1.0 - error(averaged)
    return {"total": total, "shared": shared, "specific": total - shared}


@torch.no_grad()
def joint_weights(
    model, x: tuple, train_idx: np.ndarray, val_idx: np.ndarray, batch: torch.Tensor | None = None
) -> tuple[list[float], dict]:
    """Weights of the blocks of ``X_indiseek`` (shared x1, shared x2, specific x1, specific x2) and the shares.

    The shares are measured on the validation cells (the training cells if there are none); the block variances on
    the training cells. Without decoders (objectives that do not reconstruct), the blocks get equal variance and the
    shares are empty. ``batch``: the one-hot batches of all cells, for a model with a batch covariate.
    """
    rng = np.random.default_rng(0)
    fit_idx = _subset(train_idx, rng)
    eval_idx = _subset(val_idx if len(val_idx) else train_idx, rng)
    weights, shares = {}, {}
    fit_batch, cells_batch = (None, None) if batch is None else (batch[fit_idx], batch[eval_idx])
    for i, name in enumerate(model.modality_names):
        fit = {kind: model._encode(x[i][fit_idx], i, kind, batch=fit_batch) for kind in ("shared", "specific")}
        if len(model.module.decoders):
            cells = x[i][eval_idx]
            c, z = (model._encode(cells, i, kind, batch=cells_batch) for kind in ("shared", "specific"))
            shares[name] = explained_variance(model.module, cells, c, z, fit["specific"], i, batch=cells_batch)
        for kind, block in fit.items():
            share = max(shares[name][kind], MIN_SHARE) if shares else 1.0
            variance = total_variance(block)  # 0 for a block that is constant over the cells: it gets weight 0
            weights[kind, i] = (share / variance) ** 0.5 if variance > 1e-12 else 0.0
    return [weights[kind, i] for kind in ("shared", "specific") for i in range(2)], shares
