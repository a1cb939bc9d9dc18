r"""The IndiSeek networks and losses (an scvi-tools module).

Stage 1 (CLIP) trains the shared encoders :math:`f_i` with the symmetric InfoNCE loss; the shared representation is
the L2-normalised output :math:`C_i = f_i(X_i) / \|f_i(X_i)\|`. Stage 2, with :math:`C` fixed, trains for each
modality :math:`i` a specific encoder :math:`h_i`, :math:`Z_i = h_i(X_i)`, and a decoder :math:`g_i` on (paper eq. 2)

.. math::
    \mathrm{CLUB}(Z_i; C_{3-i}) + \frac{\lambda}{2\,E\|X_i\|^2}\,E\|g_i(Z_i, C_i) - X_i\|^2,

with the CLUB estimator :math:`q_i(z_i \mid c_{3-i})` fitted by maximum likelihood in alternation (the training plan
runs the alternation). Stage 2 follows scvi-tools' path: :meth:`IndiSeekModule.inference` gives :math:`C`,
:math:`Z` and the dependence term (the CLUB bound), :meth:`IndiSeekModule.generative` the reconstructions
:math:`g_i(Z_i, C_i)`, and :meth:`IndiSeekModule.loss` adds the completeness term: ``club + lam / 2 * recon``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from indiseek._constants import ENCODERS, ESTIMATORS, OBJECTIVES, X1_KEY, X2_KEY
from indiseek.nn import (
    MLP,
    ContrastiveCritic,
    GaussianCLUB,
    MomentsCLUB,
    SequenceEncoder,
    orthogonality,
    symmetric_info_nce,
)

#: CLIP's initial inverse temperature (1 / 0.07) and the cap on it (100), as in Radford et al. (2021).
_INIT_LOGIT_SCALE = float(torch.log(torch.tensor(1 / 0.07)))
_MAX_LOGIT_SCALE = float(torch.log(torch.tensor(100.0)))
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


class IndiSeekModule(BaseModuleClass):
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
        :math:`Z_i` to outrun the estimator; :math:`g_i` undoes any scale it needs.
    encoder
        Encoder of sequence modalities: ``"mlp"`` (an MLP over the flattened steps and their validity indicators)
        or ``"transformer"`` (:class:`~indiseek.nn.SequenceEncoder`). Flat modalities always use MLPs.
    sequence_shapes
        Per modality, ``(n_steps, n_features)`` if it is a sequence, else ``None``. A sequence modality's input
        is packed: its ``n_steps * n_features`` values (``n_input``) followed by ``n_steps`` step indicators (1 for
        a valid step, 0 for padding). Its reconstruction error counts valid steps only.
    modality_names
        Names of the two modalities in the loss terms (``club_<name>``, ``recon_<name>``, ...).

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
        lam: float = 10.0,
        objective: str = "indiseek",
        estimator: str = "mlp",
        temperature: float = 0.07,
        standardize_specific: bool = True,
        encoder: str = "mlp",
        sequence_shapes: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None),
        modality_names: tuple[str, str] = ("x1", "x2"),
    ):
        super().__init__()
        for value, allowed, what in ((encoder, ENCODERS, "encoder"), (objective, OBJECTIVES, "objective")):
            if value not in allowed:
                raise ValueError(f"Unknown {what} {value!r}; choose one of {allowed}.")
        if estimator not in ESTIMATORS:
            raise ValueError(f"Unknown estimator {estimator!r}; choose one of {ESTIMATORS}.")
        self.n_inputs = (n_input1, n_input2)
        self.sequence_shapes = tuple(None if s is None else (int(s[0]), int(s[1])) for s in sequence_shapes)
        for n, shape in zip(self.n_inputs, self.sequence_shapes, strict=True):
            if shape is not None and shape[0] * shape[1] != n:
                raise ValueError(f"A sequence of shape {shape} has {shape[0] * shape[1]} values, not {n}.")
        self.encoder_kind, self.objective, self.estimator_kind = encoder, objective, estimator
        self.dropout = dropout  # validated by the encoders that take it
        self.lam = float(lam)
        self.n_shared, self.n_specific = n_shared, n_specific
        self.modality_names = tuple(modality_names)
        # the construction order fixes how the seeded initialisation is drawn: keep it
        self.shared_encoders = nn.ModuleList([self._encoder(i, n_shared, n_hidden, n_layers) for i in range(2)])
        self.logit_scale = nn.Parameter(torch.tensor(_INIT_LOGIT_SCALE))
        stage2 = range(2) if self.has_specific else range(0)  # the CLIP-only baseline has no stage-2 networks
        z_norm = _standardizer if standardize_specific else lambda n: nn.Identity()
        self.specific_encoders = nn.ModuleList(
            [nn.Sequential(self._encoder(i, n_specific, n_hidden, n_layers), z_norm(n_specific)) for i in stage2]
        )
        n_rep = n_specific + n_shared
        reconstructs, contrasts = objective in _RECONSTRUCTING, objective in ("factorcl", "infodisen")
        self.decoders = nn.ModuleList(
            [MLP(n_rep, self.n_inputs[i], n_hidden=n_hidden, n_layers=n_layers) for i in stage2 if reconstructs]
        )
        self.critics = nn.ModuleList(
            [ContrastiveCritic(n_rep, self.n_inputs[i], n_hidden=n_hidden, temperature=temperature) for i in stage2]
            if contrasts
            else []
        )
        self.estimators = nn.ModuleList(
            [self._estimator(n_estimator_layers, n_hidden) for _ in stage2 if self.uses_club]
        )
        self.register_buffer("input_scale", torch.tensor([float(n) for n in self.n_inputs]))

    def _encoder(self, i: int, n_output: int, n_hidden: int, n_layers: int) -> nn.Module:
        """Encoder of modality ``i``: an MLP, or for a sequence modality the chosen sequence encoder."""
        shape = self.sequence_shapes[i]
        if shape is None:
            return MLP(self.n_inputs[i], n_output, n_hidden=n_hidden, n_layers=n_layers, dropout=self.dropout)
        if self.encoder_kind == "transformer":
            return SequenceEncoder(*shape, n_output, dropout=self.dropout)
        return MLP(self.n_inputs[i] + shape[0], n_output, n_hidden=n_hidden, n_layers=n_layers, dropout=self.dropout)

    def _estimator(self, n_layers: int, n_hidden: int) -> nn.Module:
        if self.estimator_kind == "mlp":
            return GaussianCLUB(self.n_shared, self.n_specific, n_hidden=n_hidden, n_layers=n_layers)
        return MomentsCLUB(self.n_shared, self.n_specific)

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
        """Whether stage 2 alternates with gradient steps of CLUB estimators (``estimator="mlp"``)."""
        return self.uses_club and self.estimator_kind == "mlp"

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
        for i in modalities:
            if i < len(self.estimators):
                yield from self.estimators[i].parameters()

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

    def _encoder_input(self, x: torch.Tensor, i: int) -> torch.Tensor:
        scaled = self.scaled(x, i)
        return scaled if self.sequence_shapes[i] is None else torch.cat([scaled, x[:, self.n_inputs[i] :]], dim=1)

    def shared(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Shared representation :math:`C_i` of modality ``i`` (0 or 1), L2-normalised."""
        return nn.functional.normalize(self.shared_encoders[i](self._encoder_input(x, i)), dim=1)

    def specific(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Specific representation :math:`Z_i` of modality ``i`` (0 or 1)."""
        return self.specific_encoders[i](self._encoder_input(x, i))

    def _unit(self, i: int) -> torch.Tensor:
        """:math:`r_i`, the scale of modality ``i``'s input in network units."""
        return torch.sqrt(self.input_scale[i] / self.n_inputs[i])

    def reconstruct(self, z: torch.Tensor, c: torch.Tensor, i: int) -> torch.Tensor:
        """Decoder :math:`g_i(Z_i, C_i)`, in the input's original units."""
        return self.decoders[i](torch.cat([z, c], dim=1)) * self._unit(i)

    # ----------------------------------------------------------------------------------------- stage 1
    def shared_loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Stage-1 loss: the symmetric InfoNCE (CLIP) loss between :math:`C_1` and :math:`C_2`."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=_MAX_LOGIT_SCALE)
        return symmetric_info_nce(self.shared(x1, 0), self.shared(x2, 1), self.logit_scale)

    # ----------------------------------------------------------------------------------------- stage 2
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {"x": (tensors.get(X1_KEY), tensors.get(X2_KEY)), "c": tuple(tensors.get(k) for k in C_KEYS)}

    @auto_move_data
    def inference(self, x: tuple, c: tuple = (None, None)) -> dict[str, tuple]:
        """Shared and specific features of the modalities present, and the dependence term of each.

        The shared features :math:`C_i` are taken from ``c`` where given, else computed without gradients (stage 2
        holds them fixed). ``"dependence"`` is :meth:`dependence_term`: what the specific encoder minimises about
        :math:`Z_i` alone (``None`` for an absent modality).
        """
        c = self._fixed_shared(x, c)
        z, dependence = [None, None], [None, None]
        for i in (k for k in range(2) if x[k] is not None):
            z[i] = self.specific(x[i], i)
            dependence[i] = self.dependence_term(i, z[i], c[i], c[1 - i])
        return {"shared": c, "specific": tuple(z), "dependence": tuple(dependence)}

    @torch.no_grad()
    def _fixed_shared(self, x: tuple, c: tuple) -> tuple:
        """The given shared features, or those of the inputs present where none are given."""
        return tuple(
            self.shared(xi, i) if ci is None and xi is not None else ci
            for i, (xi, ci) in enumerate(zip(x, c, strict=True))
        )

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict:
        return {"specific": inference_outputs["specific"], "shared": inference_outputs["shared"]}

    def generative(self, specific: tuple, shared: tuple) -> dict[str, tuple]:
        r"""Decoder outputs :math:`g_i(Z_i, C_i)`; empty for objectives without decoders.

        ``"decoded"`` holds them in network units (the reconstruction term compares them with :math:`\tilde X_i`),
        ``"reconstruction"`` in the input's units.
        """
        if not len(self.decoders):
            return {}
        decoded = tuple(
            None if z is None else self.decoders[i](torch.cat([z, c], dim=1))
            for i, (z, c) in enumerate(zip(specific, shared, strict=True))
        )
        reconstruction = tuple(None if d is None else d * self._unit(i) for i, d in enumerate(decoded))
        return {"decoded": decoded, "reconstruction": reconstruction}

    def reconstruction_error(self, x: torch.Tensor, decoded: torch.Tensor, i: int) -> torch.Tensor:
        r""":math:`E\|g_i(Z_i, C_i) - X_i\|^2 / E\|X_i\|^2` on a batch (valid steps only, for sequences)."""
        error = (decoded - self.scaled(x, i)) ** 2
        valid = self._valid_values(x, i)
        return (error if valid is None else error * valid).mean()

    def contrastive_error(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor, i: int) -> torch.Tensor:
        r"""InfoNCE loss of the critic between :math:`(Z_i, C)` and :math:`\tilde X_i` (``log(batch)`` at chance)."""
        return self.critics[i](torch.cat([z, c], dim=1), self.scaled(x, i))

    # Each objective is D_i + lam / 2 * K_i per modality: the dependence term D_i (`dependence_term`) and the
    # completeness term K_i (`completeness_term`), named as logged. `loss` adds them up.
    def dependence_term(
        self, i: int, z: torch.Tensor, c_own: torch.Tensor, c_other: torch.Tensor
    ) -> tuple[str, torch.Tensor]:
        r"""Name and value of :math:`D_i`, the dependence of :math:`Z_i` on shared features that the encoder removes.

        ``c_own`` is :math:`C_i` and ``c_other`` :math:`C_{3-i}`.
        """
        if self.objective == "indiseek":  # eq. (2): CLUB(Z_i; C_{3-i})
            return "club", self.estimators[i](c_other, z)
        if self.objective in ("indiseek_noswitch", "factorcl"):  # IndiSeek0 and FactorizedCL: CLUB(Z_i; C_i)
            return "club", self.estimators[i](c_own, z)
        if self.objective == "infodisen":
            return "orthogonality", orthogonality(z, c_own)
        raise RuntimeError("The CLIP-only objective has no stage 2.")

    def completeness_term(
        self, i: int, x: torch.Tensor, z: torch.Tensor, c_own: torch.Tensor, c_other: torch.Tensor, decoded=None
    ) -> tuple[str, torch.Tensor]:
        r"""Name and value of :math:`K_i`, how completely the representation describes :math:`X_i`.

        ``decoded`` is :math:`g_i(Z_i, C_i)` in network units (for the reconstructing objectives).
        """
        if self.objective in ("indiseek", "indiseek_noswitch"):  # eq. (2): E||g_i(Z_i, C_i) - X_i||^2 / E||X_i||^2
            return "recon", self.reconstruction_error(x, decoded, i)
        if self.objective == "factorcl":  # InfoNCE between (Z_i, C_i) and X_i
            return "nce", self.contrastive_error(x, z, c_own, i)
        if self.objective == "infodisen":  # InfoNCE between (Z_i, C_{3-i}) and X_i
            return "nce", self.contrastive_error(x, z, c_other, i)
        raise RuntimeError("The CLIP-only objective has no stage 2.")

    def club_condition(self, c_own: torch.Tensor, c_other: torch.Tensor) -> torch.Tensor:
        r"""The CLUB estimator's condition, as in :meth:`dependence_term`: :math:`C_{3-i}` (IndiSeek) or :math:`C_i`."""
        return c_other if self.objective == "indiseek" else c_own

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
            completeness[f"{comp_name}_{self.modality_names[i]}"] = comp
        n_obs = next(t for t in x if t is not None).shape[0]
        return LossOutput(loss=total, reconstruction_loss=completeness, extra_metrics=dependence, n_obs_minibatch=n_obs)

    def estimator_loss(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative log-likelihood of the CLUB estimators on a batch, with the encoders held fixed."""
        return sum(self.estimators[i].learning_loss(cond, z) for i, cond, z in self._estimator_pairs(tensors))

    @torch.no_grad()
    def refit_estimators(self, tensors: dict[str, torch.Tensor]) -> None:
        """Refit closed-form (``"moments"``) CLUB estimators on the cells of ``tensors``."""
        for i, cond, z in self._estimator_pairs(tensors):
            self.estimators[i].fit(cond, z)

    def _estimator_pairs(self, tensors: dict[str, torch.Tensor]) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(i, condition, z)`` of each present modality's CLUB estimator, ``z`` from the current encoder (no grad)."""
        x, c = self._get_inference_input(tensors).values()
        c = self._fixed_shared(x, c)
        for i in (k for k in range(2) if x[k] is not None):
            with torch.no_grad():
                z = self.specific(x[i], i)
            yield i, self.club_condition(c[i], c[1 - i]), z

    @torch.inference_mode()
    def sample(self, tensors: dict[str, torch.Tensor], n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of both modalities (the decoders are deterministic, so ``n_samples`` must be 1)."""
        if n_samples != 1:
            raise ValueError("IndiSeek's decoders are deterministic: `n_samples` must be 1.")
        if not len(self.decoders):
            raise ValueError(f"The {self.objective!r} objective has no decoders to sample from.")
        _, generative_outputs = self.forward(tensors, compute_loss=False)
        return generative_outputs["reconstruction"]
