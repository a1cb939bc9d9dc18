"""The synthetic settings of the IndiSeek paper (section 1.1 and appendix A.2.1)."""

from __future__ import annotations

import numpy as np

#: Input dimension d_1 and shared dimension d_c of all four settings.
N_FEATURES, N_SHARED = 6, 2
#: Per setting, the 1-based input coordinates that an ideal specific representation depends on (and only on).
IDEAL_COORDINATES = {1: (3, 4, 5, 6), 2: (5, 6), 3: (3, 4, 5, 6), 4: (5, 6)}
#: Support of the discrete distribution of the specific coordinates in Settings 3 and 4.
DISCRETE_SUPPORT = np.array([-np.sqrt(7) / 2, -1.0, -0.5, 0.5, 1.0, np.sqrt(7) / 2])


def _shared_map(x: np.ndarray) -> np.ndarray:
    """Setting 1's shared map f(x) = 0.5 A x + 0.2 sin(A x) + 0.2 (A x)^3 with A = (I_2, O)."""
    a = x[:, :N_SHARED]
    return 0.5 * a + 0.2 * np.sin(a) + 0.2 * a**3


def paper_setting(k: int, n: int = 10_000, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw one of the paper's four synthetic settings: a modality :math:`X_1 \in R^6` and its oracle :math:`C_1`.

    * **Setting 1**: :math:`X_1 \sim N(0, I_6)`; :math:`C_1 = 0.5 A X_1 + 0.2 \sin(A X_1) + 0.2 (A X_1)^3` with
      :math:`A = (I_2, O)`, entrywise. Ideal specific features: coordinates 3-6.
    * **Setting 2**: coordinates 1, 2, 5, 6 iid :math:`N(0, 1)`, :math:`x_3 = 0.2 (x_1 + x_2)`,
      :math:`x_4 = x_1 x_2`; :math:`C_1 = (x_1, x_2)`. Coordinates 3-4 are redundant with the shared ones; ideal
      specific features: coordinates 5-6.
    * **Settings 3 and 4**: Settings 1 and 2 with the specific coordinates (3-6, and 5-6) drawn iid from
      :math:`\mathrm{Unif}\{-\sqrt7/2, -1, -1/2, 1/2, 1, \sqrt7/2\}` (mean 0, variance 1) instead of
      :math:`N(0, 1)`.

    :data:`IDEAL_COORDINATES` lists the ideal coordinates of each setting.

    Parameters
    ----------
    k
        The setting, 1 to 4.
    n
        Number of samples.
    seed
        Seed of the draw.

    Returns
    -------
    ``(x, shared)``: float32 arrays of shape ``(n, 6)`` and ``(n, 2)``.

    Examples
    --------
    >>> import numpy as np
    >>> import indiseek as isk
    >>> x, shared = isk.datasets.paper_setting(2, n=5, seed=0)
    >>> x.shape, shared.shape
    ((5, 6), (5, 2))
    >>> bool(np.allclose(x[:, 3], x[:, 0] * x[:, 1]))
    True
    """
    if k not in IDEAL_COORDINATES:
        raise ValueError(f"`k` must be one of the settings 1, 2, 3, 4; got {k!r}.")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}.")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES))
    specific = [j - 1 for j in IDEAL_COORDINATES[k]]
    if k in (3, 4):
        x[:, specific] = rng.choice(DISCRETE_SUPPORT, size=(n, len(specific)))
    if k in (2, 4):
        x[:, 2] = 0.2 * (x[:, 0] + x[:, 1])
        x[:, 3] = x[:, 0] * x[:, 1]
        shared = x[:, :N_SHARED].copy()
    else:
        shared = _shared_map(x)
    return x.astype(np.float32), shared.astype(np.float32)
