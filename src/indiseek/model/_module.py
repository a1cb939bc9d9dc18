r"""The IndiSeek networks and losses (an scvi-tools module).

Stage 1 (CLIP) trains the shared encoders :math:`f_i` with the symmetric InfoNCE loss; the shared representation is
the L2-normalised output :math:`C_i = f_i(X_i) / \|f_i(X_i)\|`; with ``input_dropout``, each pair's inputs are
masked at random while stage 1 trains (an augmentation, as in contrastive learning of views). Stage 2, with :math:`C` fixed, trains for each
modality :math:`i` a specific encoder :math:`h_i`, :math:`Z_i = h_i(X_i)`, and a decoder :math:`g_i` on (paper eq. 2)

.. math::
    \mathrm{CLUB}(Z_i; C_{3-i}) + \frac{\lambda}{2\,E\|X_i\|^2}\,E\|g_i(Z_i, C_i) - X_i\|^2,

with the CLUB estimator :math:`q_i(z_i \mid c_{3-i})` fitted by maximum likelihood in alternation (the training plan
runs the alternation).

With a batch covariate :math:`B` (``n_batch > 1``: the sample, donor or run of each cell), both stages also remove
what the representations know about the batch, with the same machinery. Stage 1 contrasts each pair only against
cells of its own batch, so that what tells batches apart does not help to find the pair, and adds the CLUB bound
of each :math:`C_i` on the batch. Stage 2 lets the specific encoders and the decoders see the batch
(:math:`Z_i = h_i(X_i, B)`, as scVI's encoders with ``encode_covariates``), so that cancelling a batch's shift of
the input costs the encoder nothing, and adds the CLUB bound of :math:`Z_i` (with
``standardize_specific="within_batch"``, :math:`Z_i` is also standardised within each batch):

.. math::
    \mathrm{InfoNCE}_B(C_1, C_2) + \beta \sum_i \mathrm{CLUB}(C_i; B), \qquad
    \mathrm{CLUB}(Z_i; C_{3-i}) + \beta\,\mathrm{CLUB}(Z_i; B)
    + \frac{\lambda}{2\,E\|X_i\|^2}\,E\|g_i(Z_i, C_i, B) - X_i\|^2,

with :math:`q(b \mid \cdot)` a classifier (:class:`~indiseek.nn.CategoricalCLUB`) fitted by maximum likelihood in
alternation, in stage 1 as in stage 2. In stage 1 it reads :math:`C_i` whitened by running moments (updated once per
batch of cells), so that no direction of small variance can hide the batch from it, and stage 1 keeps the weights of
the lowest validation InfoNCE. Cells of a batch the model has not seen are encoded and decoded at the training cells'
batch frequencies. With ``erase_batch``, once stage 1 ends each :math:`C_i` also passes through a linear erasure of the
batch fitted on the training cells (:class:`~indiseek.nn.LinearErasure`: the directions in which the batches differ
on average are removed), so stage 2 and every output see the erased :math:`C_i`.
Stage 2 follows scvi-tools' path: :meth:`IndiSeekModule.inference` gives :math:`C`, :math:`Z` and the dependence term
(the CLUB bound), :meth:`IndiSeekModule.generative` the reconstructions :math:`g_i(Z_i, C_i)`, and
:meth:`IndiSeekModule.loss` adds the completeness term: ``club + lam / 2 * recon``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from indiseek._constants import BATCH_KEY, ENCODERS, ESTIMATORS, OBJECTIVES, X1_KEY, X2_KEY
from indiseek.nn import (
    MLP,
    BatchMomentsCLUB,
    BatchwiseStandardization,
    CategoricalCLUB,
    ContrastiveCritic,
    GaussianCLUB,
    LinearErasure,
    MomentsCLUB,
    SequenceEncoder,
)
from indiseek.nn._mlp import check_dropout

from ._terms import LossTerms

#: CLIP's initial inverse temperature (1 / 0.07), as in Radford et al. (2021); the cap is in ``_terms``.
_INIT_LOGIT_SCALE = float(torch.log(torch.tensor(1 / 0.07)))
#: Keys of the fixed shared features in a stage-2 batch.
C_KEYS = ("c1", "c2")
#: Objectives whose specific representation is reconstructed with a decoder (the others use an InfoNCE critic).
_RECONSTRUCTING = ("indiseek", "indiseek_noswitch")


def _standardizer(n: int) -> nn.BatchNorm1d:
    """Per-coordinate standardisation of Z by batch statistics (running statistics at inference).

    Unit-variance coordinates keep Z inside the range that the CLUB estimator's bounded variance can follow: an
    encoder free to shrink Z could slide under the estimator's variance floor, where the bound reads zero whatever
    the dependence. ``eps`` is negligible so that Z's scale does not depend on the encoder's output scale at all.
    """
    return nn.BatchNorm1d(n, affine=False, eps=1e-12)


class IndiSeekModule(LossTerms, BaseModuleClass):
    r"""Shared encoders :math:`f_i`, specific encoders :math:`h_i`, decoders :math:`g_i` and CLUB estimators.

    The networks see :math:`\tilde X_i = X_i / r_i` with the scalar :math:`r_i^2 = E\|X_i\|^2 / d_i` (a buffer set
    once from the training cells, :meth:`set_input_scale`), and :math:`g_i` predicts :math:`\tilde X_i`; one scalar
    per modality keeps the relative scale of the features unchanged, and :math:`\|g_i - \tilde X_i\|^2 / d_i` equals
    eq. (2)'s :math:`\|r_i g_i - X_i\|^2 / E\|X_i\|^2`. A stage-2 batch holds the inputs ``x1``, ``x2`` and the fixed
    shared features ``c1``, ``c2``; a modality whose input is absent from the batch is skipped.

    Parameters
    ----------
    n_input1, n_input2
        Input dimensions of the two modalities.
    n_shared
        Dimension of each shared representation.
    n_specific
        Dimension of each specific representation.
    n_hidden
        Width of the hidden layers of every network.
    n_layers
        Number of linear layers of every encoder and decoder.
    n_estimator_layers
        Number of linear layers of the CLUB mean and log-variance networks.
    dropout
        Dropout rate in the hidden layers of the shared and specific encoders (not of the decoders, critics or
        estimators), active only while that encoder trains.
    input_dropout
        Share of each cell's input features that are set to zero at random (the rest scaled by
        :math:`1 / (1 - p)`, as dropout does) before the shared encoders while stage 1 trains: an augmentation of
        CLIP's pairs, so that the shared features cannot rest on a few input features. Stage 2 and inference see the
        inputs whole.
    lam
        :math:`\lambda`, the weight of the completeness (reconstruction) term.
    objective
        The stage-2 loss of each modality, :math:`D_i + \frac{\lambda}{2} K_i` with a dependence term :math:`D_i`
        (:meth:`dependence_term`) and a completeness term :math:`K_i` (:meth:`completeness_term`), everything else
        equal:

        * ``"indiseek"``: :math:`\mathrm{CLUB}(Z_i; C_{3-i})` + :math:`\frac{\lambda}{2}` the scaled reconstruction
          error of :math:`X_i` from :math:`(Z_i, C_i)` (eq. 2);
        * ``"indiseek_noswitch"``: the same with :math:`\mathrm{CLUB}(Z_i; C_i)` (the paper's IndiSeek0);
        * ``"factorcl"``: :math:`\mathrm{CLUB}(Z_i; C_i)` + :math:`\frac{\lambda}{2}` InfoNCE between
          :math:`(Z_i, C_i)` and :math:`X_i` (task-agnostic FactorizedCL, with IndiSeek's CLUB estimator);
        * ``"infodisen"``: the orthogonality of :math:`Z_i` and :math:`C_i` (:func:`~indiseek.nn.orthogonality`) +
          :math:`\frac{\lambda}{2}` InfoNCE between :math:`(Z_i, C_{3-i})` and :math:`X_i`;
        * ``"clip"``: no specific representations (the CLIP-only baseline); only stage 1 trains.
    estimator
        The CLUB estimator: ``"mlp"`` (mean and log-variance networks fitted by gradient steps, Cheng et al. 2020)
        or ``"moments"`` (a linear-Gaussian :math:`q` refitted in closed form, :class:`~indiseek.nn.MomentsCLUB`).
    temperature
        Temperature of the InfoNCE completeness term (``"factorcl"``, ``"infodisen"``).
    standardize_specific
        Batch-normalise :math:`Z_i` (no affine parameters), so that the encoder cannot inflate the scale of
        :math:`Z_i` to outrun the estimator; :math:`g_i` undoes any scale it needs. ``"within_batch"``: with a
        batch covariate, standardise each batch by its own moments (:class:`~indiseek.nn.BatchwiseStandardization`,
        set after stage 2 from the encoders' outputs at inference, :meth:`calibrate_specific`), so that no batch
        differs from another in the mean or variance of any coordinate of :math:`Z_i`; it also removes the
        differences that come from batches holding the cell types in different proportions. Without a batch
        covariate it is the same as ``True``.
    encoder
        Encoder of sequence modalities: ``"mlp"`` (an MLP over the flattened steps and their validity indicators)
        or ``"transformer"`` (:class:`~indiseek.nn.SequenceEncoder`). Flat modalities always use MLPs.
    sequence_shapes
        Per modality, ``(n_steps, n_features)`` if it is a sequence, else ``None``. A sequence modality's input
        is packed: its ``n_steps * n_features`` values (``n_input``) followed by ``n_steps`` step indicators (1 for
        a valid step, 0 for padding). Its reconstruction error counts valid steps only.
    modality_names
        Names of the two modalities in the loss terms (``club_<name>``, ``recon_<name>``, ...).
    n_batch
        Number of batches of the batch covariate (0 or 1: none). Batches enter as one-hot ``"batch"`` tensors.
    batch_weight
        :math:`\beta`, the weight of the batch CLUB terms.
    batch_estimator
        The batch CLUB estimator: ``"moments"`` (Gaussian :math:`q(\cdot \mid b)` with the batch means and pooled
        variances of each minibatch, in closed form: :class:`~indiseek.nn.BatchMomentsCLUB`) or ``"mlp"`` (a
        classifier fitted in alternation: :class:`~indiseek.nn.CategoricalCLUB`).
    encode_batch
        With a batch covariate, also give the batch (one-hot) to the specific MLP encoders, as scVI's
        ``encode_covariates``: an encoder that knows the batch can cancel a batch's shift of the input. The shared
        encoders do not see it (a batch input is a clean batch signal that CLIP's features then pick up). Cells of
        a batch the model has not seen are encoded at the training cells' batch frequencies.
    erase_batch
        With a batch covariate, pass each :math:`C_i` through a :class:`~indiseek.nn.LinearErasure` of the batch,
        fitted on the training cells after stage 1 (:meth:`erase_batch_from_shared`; the identity until then).
    dependence_without_dropout
        In stage 2 with ``dropout`` > 0, the dependence terms on :math:`Z_i` (its CLUB bound, and the batch term)
        and the fitting of their estimators read :math:`Z_i` from a second pass of the specific encoder without
        dropout, while the completeness term reads the pass with dropout (:meth:`specific_for_dependence`). Without
        it, an encoder can make dropout's noise most of :math:`Z_i`'s variance in training, which hides its
        dependence on :math:`C_{3-i}` from the estimator, and the dependence shows at inference, where there is no
        dropout.

    Examples
    --------
    >>> import torch
    >>> from indiseek.model import IndiSeekModule
    >>> module = IndiSeekModule(6, 4, n_hidden=8, n_layers=2, modality_names=("rna", "prot"))
    >>> batch = {"x1": torch.randn(16, 6), "x2": torch.randn(16, 4)}
    >>> _, _, out = module(batch)
    >>> sorted(out.extra_metrics), sorted(out.reconstruction_loss)
    (['club_prot', 'club_rna'], ['recon_prot', 'recon_rna'])
    """

    def __init__(
        self,
        n_input1: int,
        n_input2: int,
        *,
        n_shared: int = 50,
        n_specific: int = 50,
        n_hidden: int = 50,
        n_layers: int = 5,
        n_estimator_layers: int = 2,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        lam: float = 10.0,
        objective: str = "indiseek",
        estimator: str = "mlp",
        temperature: float = 0.07,
        standardize_specific: bool | str = True,
        encoder: str = "mlp",
        sequence_shapes: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None),
        modality_names: tuple[str, str] = ("x1", "x2"),
        n_batch: int = 0,
        batch_weight: float = 1.0,
        batch_estimator: str = "mlp",
        encode_batch: bool = True,
        erase_batch: bool = False,
        dependence_without_dropout: bool = False,
    ):
        super().__init__()
        for value, allowed, what in (
            (encoder, ENCODERS, "encoder"),
            (objective, OBJECTIVES, "objective"),
            (estimator, ESTIMATORS, "estimator"),
            (batch_estimator, ESTIMATORS, "batch_estimator"),
        ):
            if value not in allowed:
                raise ValueError(f"Unknown {what} {value!r}; choose one of {allowed}.")
        if not (isinstance(standardize_specific, bool) or standardize_specific == "within_batch"):
            raise ValueError(
                f'`standardize_specific` must be True, False or "within_batch", got {standardize_specific!r}.'
            )
        self.standardize_specific = standardize_specific
        self.n_inputs = (n_input1, n_input2)
        self.sequence_shapes = tuple(None if s is None else (int(s[0]), int(s[1])) for s in sequence_shapes)
        for n, shape in zip(self.n_inputs, self.sequence_shapes, strict=True):
            if shape is not None and shape[0] * shape[1] != n:
                raise ValueError(f"A sequence of shape {shape} has {shape[0] * shape[1]} values, not {n}.")
        self.encoder_kind, self.objective, self.estimator_kind = encoder, objective, estimator
        self.dropout = dropout  # validated by the encoders that take it
        check_dropout(input_dropout, "input_dropout")
        self.input_dropout = float(input_dropout)
        self.lam = float(lam)
        self.n_shared, self.n_specific = n_shared, n_specific
        self.modality_names = tuple(modality_names)
        self.n_batch = int(n_batch) if n_batch > 1 else 0
        self.batch_weight = float(batch_weight)
        self.batch_estimator_kind = batch_estimator
        self.encode_batch = bool(encode_batch)
        self.erase_batch = bool(erase_batch)
        self.dependence_without_dropout = bool(dependence_without_dropout)
        self.register_buffer("input_scale", torch.tensor([float(n) for n in self.n_inputs]))
        self.register_buffer("batch_prior", torch.full((self.n_batch,), 1.0 / max(self.n_batch, 1)))
        self._build_networks(n_hidden, n_layers, n_estimator_layers, temperature)

    def _build_networks(self, n_hidden: int, n_layers: int, n_estimator_layers: int, temperature: float) -> None:
        """Encoders, decoders, critics and estimators, in the order that fixes how a seeded initialisation is drawn."""
        n_shared, n_specific, objective = self.n_shared, self.n_specific, self.objective
        self.shared_encoders = nn.ModuleList([self._encoder(i, n_shared, n_hidden, n_layers, False) for i in range(2)])
        self.logit_scale = nn.Parameter(torch.tensor(_INIT_LOGIT_SCALE))
        stage2 = range(2) if self.has_specific else range(0)  # the CLIP-only baseline has no stage-2 networks
        z_norm = self._specific_norm if self.standardize_specific else lambda n: nn.Identity()
        self.specific_encoders = nn.ModuleList(
            [
                nn.Sequential(
                    self._encoder(i, n_specific, n_hidden, n_layers, self.encodes_batch(i)), z_norm(n_specific)
                )
                for i in stage2
            ]
        )
        n_rep = n_specific + n_shared
        reconstructs, contrasts = objective in _RECONSTRUCTING, objective in ("factorcl", "infodisen")
        self.decoders = nn.ModuleList(
            [
                MLP(n_rep + self.n_batch, self.n_inputs[i], n_hidden=n_hidden, n_layers=n_layers)
                for i in stage2
                if reconstructs
            ]
        )
        self.critics = nn.ModuleList(
            [ContrastiveCritic(n_rep, self.n_inputs[i], n_hidden=n_hidden, temperature=temperature) for i in stage2]
            if contrasts
            else []
        )
        self.estimators = nn.ModuleList(
            [self._estimator(n_estimator_layers, n_hidden) for _ in stage2 if self.uses_club]
        )
        with_batch = range(2) if self.n_batch else range(0)
        # only C's classifiers read their input whitened: whitening Z's as well cost Z its own factors on simulated
        # batches (docs/benchmarks.md, "Batch correction")
        self.shared_batch_estimators = nn.ModuleList(
            [self._batch_estimator(n_shared, n_estimator_layers, n_hidden, whiten=True) for _ in with_batch]
        )
        self.batch_estimators = nn.ModuleList(
            [
                self._batch_estimator(n_specific, n_estimator_layers, n_hidden, whiten=False)
                for _ in stage2
                if self.n_batch
            ]
        )
        self.shared_erasures = nn.ModuleList([LinearErasure(n_shared) for _ in with_batch if self.erase_batch])

    def _specific_norm(self, n: int) -> nn.Module:
        """Standardisation of :math:`Z_i` per coordinate: over all cells, or within each batch (``"within_batch"``)."""
        within_batch = self.n_batch and self.standardize_specific == "within_batch"
        return BatchwiseStandardization(n, self.n_batch) if within_batch else _standardizer(n)

    def _encoder(self, i: int, n_output: int, n_hidden: int, n_layers: int, with_batch: bool) -> nn.Module:
        """Encoder of modality ``i``: an MLP (``with_batch``: that also sees the batch), or a sequence encoder."""
        shape = self.sequence_shapes[i]
        if shape is not None and self.encoder_kind == "transformer":
            return SequenceEncoder(*shape, n_output, dropout=self.dropout)
        n_input = self.n_inputs[i] + (0 if shape is None else shape[0]) + (self.n_batch if with_batch else 0)
        return MLP(n_input, n_output, n_hidden=n_hidden, n_layers=n_layers, dropout=self.dropout)

    def encodes_batch(self, i: int) -> bool:
        """Whether the specific encoder of modality ``i`` sees the batch (an MLP encoder, with ``encode_batch``)."""
        transformer = self.sequence_shapes[i] is not None and self.encoder_kind == "transformer"
        return bool(self.n_batch) and self.encode_batch and not transformer

    def _estimator(self, n_layers: int, n_hidden: int) -> nn.Module:
        if self.estimator_kind == "mlp":
            return GaussianCLUB(self.n_shared, self.n_specific, n_hidden=n_hidden, n_layers=n_layers)
        return MomentsCLUB(self.n_shared, self.n_specific)

    def _batch_estimator(self, n_input: int, n_layers: int, n_hidden: int, *, whiten: bool) -> nn.Module:
        if self.batch_estimator_kind == "mlp":
            return CategoricalCLUB(n_input, self.n_batch, n_hidden=n_hidden, n_layers=n_layers, whiten=whiten)
        return BatchMomentsCLUB()

    # ----------------------------------------------------------------------------------------- parameters
    @property
    def has_specific(self) -> bool:
        """Whether the objective learns specific representations (all but the CLIP-only baseline)."""
        return self.objective != "clip"

    @property
    def uses_club(self) -> bool:
        """Whether the objective's dependence term is a CLUB bound (with estimators fitted in stage 2)."""
        return self.objective in ("indiseek", "indiseek_noswitch", "factorcl")

    @property
    def trains_estimator(self) -> bool:
        """Whether stage 2 alternates with gradient steps of estimators (``estimator="mlp"``, or a batch covariate)."""
        return (self.uses_club and self.estimator_kind == "mlp") or self.fits_batch_estimators

    @property
    def has_estimators(self) -> bool:
        """Whether stage 2 fits any estimator between encoder steps (CLUB on the shared features or on the batch)."""
        return len(self.estimators) > 0 or self.fits_batch_estimators

    @property
    def fits_batch_estimators(self) -> bool:
        """Whether batch classifiers are fitted by gradient steps (a batch covariate with ``batch_estimator="mlp"``)."""
        return self.n_batch > 0 and self.batch_estimator_kind == "mlp"

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained in stage 1."""
        yield from self.shared_encoders.parameters()
        yield self.logit_scale

    def specific_parameters(self, modalities: tuple[int, ...] = (0, 1)) -> Iterator[nn.Parameter]:
        """Encoder, decoder and critic parameters trained in stage 2 (of the given modalities)."""
        for nets in (self.specific_encoders, self.decoders, self.critics):
            for i in modalities:
                if i < len(nets):
                    yield from nets[i].parameters()

    def estimator_parameters(self, modalities: tuple[int, ...] = (0, 1)) -> Iterator[nn.Parameter]:
        """CLUB estimator parameters (of the given modalities), fitted by maximum likelihood in stage 2."""
        for nets in (self.estimators, self.batch_estimators):
            for i in modalities:
                if i < len(nets):
                    yield from nets[i].parameters()

    def shared_estimator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the batch classifiers of stage 1 (none without a batch covariate)."""
        yield from self.shared_batch_estimators.parameters()

    @torch.no_grad()
    def set_input_scale(self, x1: torch.Tensor, x2: torch.Tensor, names: tuple[str, str] | None = None) -> None:
        r"""Record :math:`E\|X_i\|^2` over the training cells (``names`` are used in error messages)."""
        for i, x in enumerate((x1, x2)):
            scale = (self._values(x, i).double() ** 2).sum(dim=1).mean()
            if not torch.isfinite(scale) or scale <= 0:
                raise ValueError(
                    f"Modality {(names or self.modality_names)[i]!r} has E||X||^2 = {float(scale)}: its values are "
                    "all zero or not finite, so the reconstruction term cannot be scaled. Check the input."
                )
            self.input_scale[i] = scale.to(self.input_scale.dtype)

    # ----------------------------------------------------------------------------------------- representations
    def _values(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """The values of a (packed, for sequences) input, without step indicators."""
        return x if self.sequence_shapes[i] is None else x[:, : self.n_inputs[i]]

    def _valid_values(self, x: torch.Tensor, i: int) -> torch.Tensor | None:
        """``(B, n_input)`` indicator of the values in valid steps of a sequence input (``None`` for flat ones)."""
        shape = self.sequence_shapes[i]
        if shape is None:
            return None
        steps = x[:, self.n_inputs[i] :]
        return steps.unsqueeze(-1).expand(-1, *shape).reshape(x.shape[0], -1)

    def scaled(self, x: torch.Tensor, i: int) -> torch.Tensor:
        r""":math:`\tilde X_i = X_i / r_i`, the input's values in the units that the networks see."""
        return self._values(x, i) * torch.rsqrt(self.input_scale[i] / self.n_inputs[i])

    def _batch_input(self, batch: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
        """One-hot ``batch`` (or mixtures), or the training cells' batch frequencies where it is ``None``."""
        return self.batch_prior.expand(n, -1).to(like.dtype) if batch is None else batch.to(like.dtype)

    def _encoder_input(
        self, x: torch.Tensor, i: int, batch: torch.Tensor | None = None, with_batch: bool = False, mask: bool = False
    ):
        """The encoder input: scaled features (``mask``: with ``input_dropout`` in training mode), step indicators, batch."""
        parts = [self.scaled(x, i)]
        if mask:
            parts[0] = nn.functional.dropout(parts[0], self.input_dropout, self.training)
        if self.sequence_shapes[i] is not None:
            parts.append(x[:, self.n_inputs[i] :])
        if with_batch:
            parts.append(self._batch_input(batch, len(x), parts[0]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def shared(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Shared representation :math:`C_i` of modality ``i`` (0 or 1), L2-normalised (then batch-erased)."""
        c = nn.functional.normalize(self.shared_encoders[i](self._encoder_input(x, i, mask=True)), dim=1)
        return self.shared_erasures[i](c) if self.shared_erasures else c

    def erase_batch_from_shared(self, c: tuple | None, batch: torch.Tensor | None = None) -> None:
        """Fit the linear batch erasure of each :math:`C_i` (``c=None``: reset it to the identity).

        ``c``: the training cells' shared features of both modalities as stage 1 leaves them (before any erasure),
        at inference; ``batch``: their one-hot batches. Stage 1 trains with the erasure reset.
        """
        for i, erasure in enumerate(self.shared_erasures):
            erasure.reset()
            if c is not None:
                erasure.fit(c[i].to(erasure.mean.device), batch.to(erasure.mean.device))

    def specific(self, x: torch.Tensor, i: int, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Specific representation :math:`Z_i` of modality ``i`` (0 or 1).

        ``batch``: the cells' one-hot batches, for a specific encoder that sees the batch (:meth:`encodes_batch`);
        ``None`` encodes them at the training cells' batch frequencies (cells of a batch the model has not seen).
        """
        encoder, norm = self.specific_encoders[i]
        z = encoder(self._encoder_input(x, i, batch, self.encodes_batch(i)))
        if isinstance(norm, BatchwiseStandardization):
            return norm(z, self._batch_input(batch, len(z), z))
        return norm(z)

    def specific_for_dependence(self, x: torch.Tensor, i: int, batch: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`Z_i` as the dependence terms and their estimators read it.

        :meth:`specific`, or, in training with ``dependence_without_dropout``, the specific encoder's pass without
        dropout (the standardisation still uses the batch's statistics).
        """
        if not self._dropout_free_dependence(i):
            return self.specific(x, i, batch)
        encoder = self.specific_encoders[i][0]
        encoder.eval()
        try:
            return self.specific(x, i, batch)
        finally:
            encoder.train()

    def _dropout_free_dependence(self, i: int) -> bool:
        """Whether the dependence terms now read a pass of specific encoder ``i`` of its own (without dropout)."""
        return self.dependence_without_dropout and self.dropout > 0 and self.specific_encoders[i][0].training

    @torch.no_grad()
    def calibrate_specific(self, x: tuple, batch: torch.Tensor, chunk: int = 4096) -> None:
        """Set the per-batch moments that standardise :math:`Z_i` from the encoders' outputs at inference.

        ``x``: the training cells' inputs of both modalities; ``batch``: their one-hot batches. Without a batch
        covariate (plain batch normalisation) nothing changes.
        """
        was_training = self.training
        self.eval()
        for i, (encoder, norm) in enumerate(self.specific_encoders):
            if not isinstance(norm, BatchwiseStandardization):
                continue
            sums = squares = counts = 0
            for start in range(0, len(x[i]), chunk):
                xb = x[i][start : start + chunk].to(self.input_scale.device)
                bb = batch[start : start + chunk].to(xb)
                z = encoder(self._encoder_input(xb, i, bb, self.encodes_batch(i))).double()
                weights = bb.double()
                sums, squares, counts = sums + weights.T @ z, squares + weights.T @ z**2, counts + weights.sum(0)
            norm.calibrate(sums, squares, counts)
        self.train(was_training)

    def _unit(self, i: int) -> torch.Tensor:
        """:math:`r_i`, the scale of modality ``i``'s input in network units."""
        return torch.sqrt(self.input_scale[i] / self.n_inputs[i])

    def decode(self, z: torch.Tensor, c: torch.Tensor, i: int, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder :math:`g_i(Z_i, C_i, B)` in network units.

        ``batch`` is one-hot (or a mixture of batches); without it, cells are decoded at the training cells' batch
        frequencies (:attr:`batch_prior`). Without a batch covariate the decoder sees :math:`(Z_i, C_i)` only.
        """
        inputs = [z, c]
        if self.n_batch:
            inputs.append(self._batch_input(batch, len(z), z))
        return self.decoders[i](torch.cat(inputs, dim=1))

    def reconstruct(self, z: torch.Tensor, c: torch.Tensor, i: int, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder :math:`g_i(Z_i, C_i, B)`, in the input's original units."""
        return self.decode(z, c, i, batch) * self._unit(i)

    @torch.no_grad()
    def set_batch_prior(self, batch: torch.Tensor) -> None:
        """Record the training cells' batch frequencies from their one-hot batches (how unseen batches decode)."""
        if self.n_batch:
            self.batch_prior.copy_(batch.double().mean(dim=0).to(self.batch_prior.dtype))

    # ----------------------------------------------------------------------------------------- stage 1
    # ----------------------------------------------------------------------------------------- stage 2
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {
            "x": (tensors.get(X1_KEY), tensors.get(X2_KEY)),
            "c": tuple(tensors.get(k) for k in C_KEYS),
            "batch": tensors.get(BATCH_KEY),
        }

    @auto_move_data
    def inference(self, x: tuple, c: tuple = (None, None), batch: torch.Tensor | None = None) -> dict[str, tuple]:
        """Shared and specific features of the modalities present, and the dependence term of each.

        The shared features :math:`C_i` are taken from ``c`` where given, else computed without gradients (stage 2
        holds them fixed). ``"dependence"`` is :meth:`dependence_term`: what the specific encoder minimises about
        :math:`Z_i` alone (``None`` for an absent modality); with a batch covariate and a one-hot ``batch``,
        ``"batch_dependence"`` is the batch CLUB bound of :math:`Z_i`.
        """
        c = self._fixed_shared(x, c)
        z, dependence, batch_dependence = [None, None], [None, None], [None, None]
        for i in (k for k in range(2) if x[k] is not None):
            z[i] = self.specific(x[i], i, batch)
            z_read = self.specific_for_dependence(x[i], i, batch) if self._dropout_free_dependence(i) else z[i]
            dependence[i] = self.dependence_term(i, z_read, c[i], c[1 - i])
            if self.n_batch and batch is not None:
                batch_dependence[i] = self.batch_estimators[i](z_read, batch)
        return {
            "shared": c,
            "specific": tuple(z),
            "dependence": tuple(dependence),
            "batch_dependence": tuple(batch_dependence),
            "batch": batch,
        }

    @torch.no_grad()
    def _fixed_shared(self, x: tuple, c: tuple) -> tuple:
        """The given shared features, or those of the inputs present where none are given."""
        return tuple(
            self.shared(xi, i) if ci is None and xi is not None else ci
            for i, (xi, ci) in enumerate(zip(x, c, strict=True))
        )

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict:
        return {
            "specific": inference_outputs["specific"],
            "shared": inference_outputs["shared"],
            "batch": inference_outputs.get("batch"),
        }

    def generative(self, specific: tuple, shared: tuple, batch: torch.Tensor | None = None) -> dict[str, tuple]:
        r"""Decoder outputs :math:`g_i(Z_i, C_i, B)`; empty for objectives without decoders.

        ``"decoded"`` holds them in network units (the reconstruction term compares them with :math:`\tilde X_i`),
        ``"reconstruction"`` in the input's units.
        """
        if not len(self.decoders):
            return {}
        decoded = tuple(
            None if z is None else self.decode(z, c, i, batch)
            for i, (z, c) in enumerate(zip(specific, shared, strict=True))
        )
        reconstruction = tuple(None if d is None else d * self._unit(i) for i, d in enumerate(decoded))
        return {"decoded": decoded, "reconstruction": reconstruction}

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        r"""Stage-2 loss of a batch: :math:`\sum_i D_i + \frac{\lambda}{2} K_i` over the modalities present.

        The completeness terms (``recon_<name>``, ``nce_<name>``) are reported as reconstruction losses and the
        dependence terms (``club_<name>``, ``orthogonality_<name>``) as extra metrics.
        """
        x = (tensors.get(X1_KEY), tensors.get(X2_KEY))
        c, z = inference_outputs["shared"], inference_outputs["specific"]
        decoded = generative_outputs.get("decoded", (None, None))
        dependence, completeness = {}, {}
        total = next(t for t in x if t is not None).new_zeros(())
        for i in (k for k in range(2) if x[k] is not None):
            dep_name, dep = inference_outputs["dependence"][i]
            comp_name, comp = self.completeness_term(i, x[i], z[i], c[i], c[1 - i], decoded[i])
            total = total + dep + self.lam / 2 * comp
            dependence[f"{dep_name}_{self.modality_names[i]}"] = dep
            batch_dep = inference_outputs.get("batch_dependence", (None, None))[i]
            if batch_dep is not None:
                total = total + self.batch_weight * batch_dep
                dependence[f"batch_specific_{self.modality_names[i]}"] = batch_dep
            completeness[f"{comp_name}_{self.modality_names[i]}"] = comp
        n_obs = next(t for t in x if t is not None).shape[0]
        return LossOutput(loss=total, reconstruction_loss=completeness, extra_metrics=dependence, n_obs_minibatch=n_obs)

    @torch.inference_mode()
    def sample(self, tensors: dict[str, torch.Tensor], n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of both modalities (the decoders are deterministic, so ``n_samples`` must be 1)."""
        if n_samples != 1:
            raise ValueError("IndiSeek's decoders are deterministic: `n_samples` must be 1.")
        if not len(self.decoders):
            raise ValueError(f"The {self.objective!r} objective has no decoders to sample from.")
        _, generative_outputs = self.forward(tensors, compute_loss=False)
        return generative_outputs["reconstruction"]
