r"""``lam="auto"``: :math:`\lambda` chosen without labels along a warm-started path of stage-2 fits.

Stage 2 trains at each :math:`\lambda` of :data:`LAMBDA_PATH` in increasing order, each segment starting from the
previous one's weights (the first, from the initial weights, for half of the stage's epochs; the others share the
other half), and scores every segment on the validation cells with two label-free numbers:

* **reconstruction error** :math:`R(\lambda)`: :math:`E\|g_i(Z_i, C_i) - X_i\|^2 / E\|X_i\|^2`, averaged over the
  two modalities (what the completeness term measures, on cells the networks did not train on);
* **leakage** :math:`L(\lambda)`: the share of the variance of the other modality's shared features
  :math:`C_{3-i}` that a ridge regression from :math:`Z_i` predicts on the validation cells (fitted on the training
  cells), the larger of the two modalities; a linear, held-out reading of the dependence that the CLUB term bounds.

A larger :math:`\lambda` lowers :math:`R` and raises :math:`L`. The chosen :math:`\lambda` is the knee of that
trade-off (:func:`knee`): the path point farthest above the chord from its first to its last point, with both
numbers rescaled to their range on the path. The model then goes back to the weights of that segment and trains on
at that :math:`\lambda` for a quarter of the stage's epochs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

#: The :math:`\lambda` values that ``lam="auto"`` tries, in the order they are trained.
LAMBDA_PATH = (1.0, 10.0, 100.0, 1_000.0, 10_000.0)
_MAX_PROBE_CELLS = 5_000


def leakage(z_train: np.ndarray, c_train: np.ndarray, z_val: np.ndarray, c_val: np.ndarray) -> float:
    """Held-out R^2 of a ridge regression of ``c`` on ``z`` (fitted on the training rows), floored at 0."""
    probe = Ridge(alpha=1.0).fit(z_train, c_train)
    return max(0.0, float(r2_score(c_val, probe.predict(z_val), multioutput="variance_weighted")))


def knee(reconstruction: np.ndarray, leak: np.ndarray) -> int:
    """Index of the knee of a path whose reconstruction error falls while its leakage rises.

    Both curves are rescaled to [0, 1] over the path; the knee maximises the rescaled reconstruction gain minus the
    rescaled leakage gain (ties: the smaller index). A flat curve counts as no change.

    Examples
    --------
    >>> knee(np.array([1.0, 0.4, 0.3, 0.25]), np.array([0.0, 0.05, 0.3, 0.9]))
    1
    """
    span = lambda v: (v - v.min()) / (np.ptp(v) if np.ptp(v) > 1e-12 else 1.0)
    gain = span(-np.asarray(reconstruction, dtype=float)) - span(np.asarray(leak, dtype=float))
    return int(np.argmax(gain))


@torch.no_grad()
def validation_scores(model, tensors: dict, train_idx: np.ndarray, val_idx: np.ndarray) -> dict[str, float]:
    """Reconstruction error and leakage (see the module docstring) of the current stage-2 weights."""
    module = model.module
    module.eval()
    rng = np.random.default_rng(0)
    probe_idx = train_idx if len(train_idx) <= _MAX_PROBE_CELLS else rng.choice(train_idx, _MAX_PROBE_CELLS, False)
    xs, cs = (tensors["x1"], tensors["x2"]), (tensors["c1"], tensors["c2"])
    errors, leaks = [], {}
    batch = tensors.get("batch")
    rows = (lambda idx: None) if batch is None else (lambda idx: batch[idx])
    for i in range(2):
        z_val = model._encode(xs[i][val_idx], i, "specific", batch=rows(val_idx))
        c_val = cs[i][val_idx]
        val_batch = None if batch is None else batch[val_idx].to(model.device)
        decoded = module.decode(z_val.to(model.device), c_val.to(model.device), i, val_batch).cpu()
        errors.append(float(module.reconstruction_error(xs[i][val_idx], decoded, i)))
        z_train = model._encode(xs[i][probe_idx], i, "specific", batch=rows(probe_idx)).numpy()
        c_other = cs[1 - i].numpy()
        leaks[f"leakage_{model.modality_names[i]}"] = leakage(
            z_train, c_other[probe_idx], z_val.numpy(), c_other[val_idx]
        )
    return {"reconstruction": float(np.mean(errors)), "leakage": max(leaks.values()), **leaks}


def path_segments(model) -> Iterator[float]:
    """Load the weights of each segment of the lambda path in turn and yield its lambda, for studies of the rule.

    The model's final weights come back when the loop ends (also when it is left early). Nothing is yielded without
    a stored path: a model trained at a fixed lambda, or loaded from disk (the segments' weights are not saved).

    Examples
    --------
    >>> import indiseek as isk
    >>> from indiseek.model._lambda import path_segments
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=120, seed=0)
    >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=10, enable_progress_bar=False)
    >>> list(path_segments(model))
    [1.0, 10.0, 100.0, 1000.0, 10000.0]
    """
    states = getattr(model, "_lambda_states", None) or []
    if not states:
        return
    final = {name: value.detach().clone() for name, value in model.module.state_dict().items()}
    try:
        for lam, state in zip(model.lambda_path_["lam"], states, strict=True):
            model.module.load_state_dict(state)
            yield float(lam)
    finally:
        model.module.load_state_dict(final)


def train_path(model, train_segment, tensors: dict, split: dict, n_epochs: int) -> pd.DataFrame:
    """Train stage 2 along :data:`LAMBDA_PATH`, keep the knee's weights, train on at its lambda; return the path.

    ``train_segment(n_epochs)`` trains stage 2 at ``model.module.lam`` and returns whether it was interrupted.
    """
    module = model.module
    first, rest = max(1, n_epochs // 2), max(1, n_epochs // (2 * (len(LAMBDA_PATH) - 1)))
    rows, states = [], []
    for k, lam in enumerate(LAMBDA_PATH):
        module.lam = lam
        if train_segment(first if k == 0 else rest):
            break
        rows.append({"lam": lam, **validation_scores(model, tensors, split["train_idx"], split["val_idx"])})
        states.append({name: value.detach().clone() for name, value in module.state_dict().items()})
    path = pd.DataFrame(rows)
    if path.empty:
        return path
    model._lambda_states = states  # each segment's weights, for studies of the rule (not saved)
    best = knee(path["reconstruction"].to_numpy(), path["leakage"].to_numpy())
    path["chosen"] = np.arange(len(path)) == best
    module.load_state_dict(states[best])
    module.lam = float(path["lam"].iloc[best])
    if len(path) == len(LAMBDA_PATH):
        train_segment(max(1, n_epochs // 4))
    return path
