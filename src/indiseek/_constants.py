"""Names shared across the package: registry keys, objectives and the documented output keys."""

from __future__ import annotations

#: scvi-tools registry keys of the two modalities.
X1_KEY = "x1"
X2_KEY = "x2"

#: Stage-2 objectives available through ``objective=``.
OBJECTIVES = ("indiseek", "indiseek_noswitch")

#: Training stages, in order.
STAGES = ("shared", "specific")


def shared_key(modality: str) -> str:
    """``.obsm`` key of a modality's shared representation."""
    return f"X_indiseek_shared_{modality}"


def specific_key(modality: str) -> str:
    """``.obsm`` key of a modality's specific representation."""
    return f"X_indiseek_specific_{modality}"


#: ``.obsm`` key of the concatenation of all four representations.
JOINT_KEY = "X_indiseek"
#: ``.uns`` key with the training parameters recorded by :func:`indiseek.tl.fit`.
UNS_KEY = "indiseek"
