"""Names shared across the package: registry keys, objectives and the documented output keys."""

from __future__ import annotations

#: scvi-tools registry keys of the two modalities.
X1_KEY = "x1"
X2_KEY = "x2"

#: Objectives available through ``objective=``: the stage-2 loss (``"clip"``: no stage 2, the CLIP-only baseline).
OBJECTIVES = ("indiseek", "indiseek_noswitch", "factorcl", "infodisen", "clip")

#: Stage-2 terms of each objective: (dependence term, whose shared features it uses, completeness term, whose
#: shared features complete Z_i). "own" is C_i, "other" is C_{3-i}.
OBJECTIVE_TERMS = {
    "indiseek": ("club", "other", "recon", "own"),
    "indiseek_noswitch": ("club", "own", "recon", "own"),
    "factorcl": ("club", "own", "nce", "own"),
    "infodisen": ("orthogonality", "own", "nce", "other"),
}

#: CLUB estimators available through ``estimator=``.
ESTIMATORS = ("mlp", "moments")

#: Encoders of sequence modalities (flat modalities always use MLPs).
ENCODERS = ("mlp", "transformer")

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
