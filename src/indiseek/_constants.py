"""Names shared across the package: registry keys, objectives and the documented output keys."""

from __future__ import annotations

#: scvi-tools registry keys of the two modalities.
X1_KEY = "x1"
X2_KEY = "x2"
#: scvi-tools registry key of the batch covariate (its one-hot tensor in a training batch has the same name).
BATCH_KEY = "batch"

#: Objectives available through ``objective=``: the stage-2 loss (``"clip"``: no stage 2, the CLIP-only baseline).
#: Their terms are stated in :meth:`indiseek.model.IndiSeekModule.dependence_term` and ``completeness_term``.
OBJECTIVES = ("indiseek", "indiseek_noswitch", "factorcl", "infodisen", "clip")

#: CLUB estimators available through ``estimator=``.
ESTIMATORS = ("mlp", "moments")

#: Encoders of sequence modalities (flat modalities always use MLPs).
ENCODERS = ("mlp", "transformer")

#: Columns of ``.var`` where :func:`indiseek.pp.prepare` keeps the centres of the RNA PCA and of the protein CLR.
LOGNORM_MEAN_KEY = "lognorm_mean"
CLR_MEAN_KEY = "clr_mean"

#: Training stages, in order.
STAGES = ("shared", "specific")


def shared_key(modality: str) -> str:
    """``.obsm`` key of a modality's shared representation."""
    return f"X_indiseek_shared_{modality}"


def specific_key(modality: str) -> str:
    """``.obsm`` key of a modality's specific representation."""
    return f"X_indiseek_specific_{modality}"


def umap_key(rep: str) -> str:
    """``.obsm`` key of the UMAP of representation ``rep`` (:func:`indiseek.tl.embeddings`)."""
    return f"{rep}_umap"


#: ``.obsm`` key of the concatenation of all four representations.
JOINT_KEY = "X_indiseek"
#: ``.uns`` key with the training parameters recorded by :func:`indiseek.tl.fit`.
UNS_KEY = "indiseek"
#: ``.uns`` key with what :func:`indiseek.pp.prepare` did (modalities, inputs, parameters).
PREPARE_KEY = "indiseek_prepare"
#: ``mod.uns`` key of a sequence modality: ``{"n_steps": T, "n_features": d, "padding": "end" | "start"}``.
SEQUENCE_KEY = "indiseek_sequence"
#: ``mod.obs`` column with the number of valid time steps of each sequence.
LENGTH_KEY = "length"
#: scanpy's own approximate-neighbour path fails from this many cells on with current SciPy (see
#: :class:`~indiseek.tl._neighbors.ApproximateNeighbors`); exact searches from here on go through scikit-learn.
SCANPY_EXACT_LIMIT = 8192
#: Names by which the two CITE-seq modalities are recognised, in the order ``(rna, protein)``.
RNA_NAMES = ("rna", "gex")
PROTEIN_NAMES = ("prot", "adt", "protein")
