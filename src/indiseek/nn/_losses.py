"""Contrastive losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_info_nce(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) loss between paired, L2-normalised embeddings.

    Row ``i`` of ``a`` and row ``i`` of ``b`` are a positive pair; every other row of the other modality in the
    batch is a negative (with ``groups``: every other row of the same group). The loss is the mean of the two
    cross-entropies (``a`` to ``b`` and ``b`` to ``a``).

    Parameters
    ----------
    a, b
        Embeddings of shape ``(batch, dim)``, already L2-normalised.
    logit_scale
        Log of the inverse temperature (a scalar tensor, learned by CLIP).
    groups
        Optional group of each row (``(batch,)`` integer codes, e.g. the sample a cell was measured in): negatives
        are drawn only from a row's own group, so that what tells the groups apart does not help to find the pair.

    Returns
    -------
    Scalar loss; ``log(batch)`` for embeddings that carry no information about the pairing.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import symmetric_info_nce
    >>> a = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> float(symmetric_info_nce(a, a, torch.tensor(5.0))) < float(torch.log(torch.tensor(8.0)))
    True
    >>> float(symmetric_info_nce(a, a, torch.tensor(5.0), groups=torch.arange(8)))  # no negatives: nothing to learn
    0.0
    """
    logits = logit_scale.exp() * a @ b.T
    if groups is not None:
        logits = logits.masked_fill(groups[:, None] != groups[None, :], float("-inf"))
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def orthogonality(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Orthogonality penalty :math:`\|\hat A^\top \hat B\|_F / B` between two batches of representations.

    :math:`\hat A`, :math:`\hat B` are the batch matrices with L2-normalised rows, so the penalty is the Frobenius
    norm of their cross-correlation, averaged over the batch; it is zero when every coordinate of one is uncorrelated
    (in this uncentred sense) with every coordinate of the other. InfoDisen (Wang et al., 2025) uses it, summed
    rather than averaged over the batch, as its independence term; it sees linear dependence only.

    Parameters
    ----------
    a, b
        Representations of shape ``(batch, d_a)`` and ``(batch, d_b)``.

    Returns
    -------
    Scalar penalty.

    Examples
    --------
    >>> import torch
    >>> from indiseek.nn import orthogonality
    >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> b = torch.tensor([[0.0, 1.0], [0.0, -1.0]])  # its sign does not follow a: no correlation
    >>> float(orthogonality(a, a)), float(orthogonality(a, b))
    (1.0, 0.0)
    """
    a_hat = F.normalize(a, dim=1)
    b_hat = F.normalize(b, dim=1)
    return torch.linalg.matrix_norm(a_hat.T @ b_hat) / a.shape[0]
