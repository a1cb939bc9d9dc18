"""Contrastive losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) loss between paired, L2-normalised embeddings.

    Row ``i`` of ``a`` and row ``i`` of ``b`` are a positive pair; every other row of the other modality in the
    batch is a negative. The loss is the mean of the two cross-entropies (``a`` to ``b`` and ``b`` to ``a``).

    Parameters
    ----------
    a, b
        Embeddings of shape ``(batch, dim)``, already L2-normalised.
    logit_scale
        Log of the inverse temperature (a scalar tensor, learned by CLIP).

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
    """
    logits = logit_scale.exp() * a @ b.T
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
