"""The IndiSeek networks and losses (an scvi-tools module)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from indiseek._constants import ENCODERS, ESTIMATORS, OBJECTIVE_TERMS, OBJECTIVES, X1_KEY, X2_KEY
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


def _standardizer(n: int) -> nn.BatchNorm1d:
    """Per-coordinate standardisation of Z by batch statistics (running statistics at inference).

    Unit-variance coordinates keep Z inside the range that the CLUB estimator's bounded variance can follow: an
    encoder free to shrink Z could slide under the estimator's variance floor, where the bound reads zero whatever
    the dependence. ``eps`` is negligible so that Z's scale does not depend on the encoder's output scale at all.
    """
    return nn.BatchNorm1d(n, affine=False, eps=1e-12)


class IndiSeekModule(BaseModuleClass):
    r"""Shared encoders :math:`f_i`, specific encoders :math:`h_i`, decoders :math:`g_i` and CLUB estimators.

    Stage 1 trains :math:`f_1, f_2` with the symmetric InfoNCE (CLIP) loss; the shared representation is the
    L2-normalised output :math:`C_i = f_i(X_i) / \|f_i(X_i)\|`, the co-embedding that the loss compares. Stage 2,
    with :math:`C` fixed, minimises for each modality :math:`i` (paper eq. 2)

    .. math::
        \mathrm{CLUB}(Z_i; C_{3-i}) + \frac{\lambda}{2\,E\|X_i\|^2}\,E\|g_i(Z_i, C_i) - X_i\|^2,
        \qquad Z_i = h_i(X_i),

    with the CLUB estimator :math:`q_i(z_i \mid c_{3-i})` fitted by maximum likelihood in alternation.
    :math:`E\|X_i\|^2` is a buffer set once from the training cells (:meth:`set_input_scale`). The networks see
    :math:`\tilde X_i = X_i / r_i` with the scalar :math:`r_i^2 = E\|X_i\|^2 / d_i`, and :math:`g_i` predicts
    :math:`\tilde X_i`; one scalar per modality keeps the relative scale of the features (and so the weighting of the
    reconstruction term) unchanged, and :math:`\|g_i - \tilde X_i\|^2 / d_i` equals eq. (2)'s
    :math:`\|r_i g_i - X_i\|^2 / E\|X_i\|^2`.

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
        Number of linear layers of the CLUB mean and log-variance networks (see :class:`~indiseek.IndiSeek`).
    dropout
        Dropout rate in the hidden layers of the shared and specific encoders (not of the decoders, critics or
        estimators), active only while that encoder trains: the shared features that stage 2 holds fixed are
        computed without it.
    lam
        :math:`\lambda`, the weight of the reconstruction term.
    objective
        The stage-2 loss of each modality, :math:`D_i + \frac{\lambda}{2} K_i` with a dependence term :math:`D_i`
        and a completeness term :math:`K_i`, everything else (networks, optimiser, schedule) equal:

        * ``"indiseek"``: :math:`D_i = \mathrm{CLUB}(Z_i; C_{3-i})`, :math:`K_i` = the scaled reconstruction error
          of :math:`X_i` from :math:`(Z_i, C_i)` (eq. 2);
        * ``"indiseek_noswitch"``: the same with :math:`\mathrm{CLUB}(Z_i; C_i)` (the paper's IndiSeek0);
        * ``"factorcl"``: :math:`D_i = \mathrm{CLUB}(Z_i; C_i)`, :math:`K_i` = InfoNCE between :math:`(C_i, Z_i)`
          and :math:`X_i` (task-agnostic FactorizedCL, with the same CLUB estimator as IndiSeek);
        * ``"infodisen"``: :math:`D_i` = the orthogonality of :math:`Z_i` and :math:`C_i`
          (:func:`~indiseek.nn.orthogonality`), :math:`K_i` = InfoNCE between :math:`(C_{3-i}, Z_i)` and
          :math:`X_i`;
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
        or ``"transformer"`` (:class:`~indiseek.nn.SequenceEncoder`: 2 layers, 2 heads, width 128, masked mean
        pooling). Flat modalities always use MLPs.
    sequence_shapes
        Per modality, ``(n_steps, n_features)`` if it is a sequence, else ``None``. A sequence modality's input
        is packed: its ``n_steps * n_features`` values (``n_input``) followed by ``n_steps`` step indicators (1 for
        a valid step, 0 for padding). Its reconstruction error counts valid steps only.
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
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"Unknown encoder {encoder!r}; choose one of {ENCODERS}.")
        self.sequence_shapes = tuple(None if s is None else (int(s[0]), int(s[1])) for s in sequence_shapes)
        for n, shape in zip((n_input1, n_input2), self.sequence_shapes, strict=True):
            if shape is not None and shape[0] * shape[1] != n:
                raise ValueError(f"A sequence of shape {shape} has {shape[0] * shape[1]} values, not {n}.")
        self.encoder_kind = encoder
        if objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}; choose one of {OBJECTIVES}.")
        if estimator not in ESTIMATORS:
            raise ValueError(f"Unknown estimator {estimator!r}; choose one of {ESTIMATORS}.")
        self.objective = objective
        self.dropout = dropout  # validated by the encoders that take it
        self.estimator_kind = estimator
        self.terms = OBJECTIVE_TERMS.get(objective)
        self.lam = float(lam)
        self.n_shared, self.n_specific = n_shared, n_specific
        n_inputs = (n_input1, n_input2)
        self.n_inputs = n_inputs
        self.shared_encoders = nn.ModuleList([self._encoder(i, n_shared, n_hidden, n_layers) for i in range(2)])
        self.logit_scale = nn.Parameter(torch.tensor(_INIT_LOGIT_SCALE))
        n_stage2 = n_inputs if self.terms is not None else ()  # the CLIP-only baseline has no stage-2 networks
        self.specific_encoders = nn.ModuleList(
            [
                nn.Sequential(
                    self._encoder(i, n_specific, n_hidden, n_layers),
                    _standardizer(n_specific) if standardize_specific else nn.Identity(),
                )
                for i in range(len(n_stage2))
            ]
        )
        completeness = self.terms[2] if self.terms else None
        self.decoders = nn.ModuleList(
            [MLP(n_specific + n_shared, n, n_hidden=n_hidden, n_layers=n_layers) for n in n_stage2]
            if completeness == "recon"
            else []
        )
        self.critics = nn.ModuleList(
            [ContrastiveCritic(n_specific + n_shared, n, n_hidden=n_hidden, temperature=temperature) for n in n_stage2]
            if completeness == "nce"
            else []
        )
        dependence = self.terms[0] if self.terms else None
        self.estimators = nn.ModuleList(
            [
                GaussianCLUB(n_shared, n_specific, n_hidden=n_hidden, n_layers=n_estimator_layers)
                if estimator == "mlp"
                else MomentsCLUB(n_shared, n_specific)
                for _ in n_stage2
            ]
            if dependence == "club"
            else []
        )
        self.register_buffer("input_scale", torch.tensor([float(n) for n in n_inputs]))

    def _encoder(self, i: int, n_output: int, n_hidden: int, n_layers: int) -> nn.Module:
        """Encoder of modality ``i``: an MLP, or for a sequence modality the chosen sequence encoder."""
        shape = self.sequence_shapes[i]
        if shape is None:
            return MLP(self.n_inputs[i], n_output, n_hidden=n_hidden, n_layers=n_layers, dropout=self.dropout)
        if self.encoder_kind == "transformer":
            return SequenceEncoder(*shape, n_output, dropout=self.dropout)
        return MLP(self.n_inputs[i] + shape[0], n_output, n_hidden=n_hidden, n_layers=n_layers, dropout=self.dropout)

    # ----------------------------------------------------------------------------------------- parameters
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

    @property
    def has_specific(self) -> bool:
        """Whether the objective learns specific representations (all but the CLIP-only baseline)."""
        return self.terms is not None

    @property
    def trains_estimator(self) -> bool:
        """Whether stage 2 alternates with gradient steps of CLUB estimators (``estimator="mlp"``)."""
        return len(self.estimators) > 0 and self.estimator_kind == "mlp"

    def estimator_parameters(self, modalities: tuple[int, ...] = (0, 1)) -> Iterator[nn.Parameter]:
        """CLUB estimator parameters (of the given modalities), fitted by maximum likelihood in stage 2."""
        for i in modalities:
            if i < len(self.estimators):
                yield from self.estimators[i].parameters()

    @torch.no_grad()
    def set_input_scale(self, x1: torch.Tensor, x2: torch.Tensor, names: tuple[str, str] = ("x1", "x2")) -> None:
        r"""Record :math:`E\|X_i\|^2` over the training cells (``names`` are used in error messages)."""
        for i, x in enumerate((x1, x2)):
            scale = (self._values(x, i).double() ** 2).sum(dim=1).mean()
            if not torch.isfinite(scale) or scale <= 0:
                raise ValueError(
                    f"Modality {names[i]!r} has E||X||^2 = {float(scale)}: its values are all zero or not finite, "
                    "so the reconstruction term cannot be scaled. Check the input representation."
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

    def reconstruct(self, z: torch.Tensor, c: torch.Tensor, i: int) -> torch.Tensor:
        """Decoder :math:`g_i(Z_i, C_i)`, in the input's original units."""
        return self.decoders[i](torch.cat([z, c], dim=1)) * torch.sqrt(self.input_scale[i] / self.n_inputs[i])

    # ----------------------------------------------------------------------------------------- losses
    def shared_loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Stage-1 symmetric InfoNCE loss."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=_MAX_LOGIT_SCALE)
        return symmetric_info_nce(self.shared(x1, 0), self.shared(x2, 1), self.logit_scale)

    def _shared_pair(self, x1, x2, c1, c2) -> tuple[torch.Tensor, torch.Tensor]:
        if c1 is not None and c2 is not None:
            return c1, c2
        with torch.no_grad():
            return self.shared(x1, 0), self.shared(x2, 1)

    @staticmethod
    def _pick(c_own: torch.Tensor, c_other: torch.Tensor, whose: str) -> torch.Tensor:
        return c_other if whose == "other" else c_own

    def term_names(self, i: int) -> tuple[str, str]:
        """Names of modality ``i``'s dependence and completeness terms (e.g. ``("club0", "recon0")``)."""
        return f"{self.terms[0]}{i}", f"{self.terms[2]}{i}"

    def specific_terms(
        self, x: torch.Tensor, i: int, c_own: torch.Tensor, c_other: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Dependence and completeness terms of modality ``i``'s stage-2 loss on a batch.

        ``c_own`` is :math:`C_i` and ``c_other`` :math:`C_{3-i}` for the batch (in the oracle study both are the
        given shared features). ``recon`` is the squared reconstruction error divided by :math:`E\|X_i\|^2`
        (computed on the scaled input, see the class docstring); ``nce`` is the InfoNCE loss of the critic.
        """
        dependence, dep_whose, completeness, comp_whose = self.terms
        z = self.specific(x, i)
        x_scaled = self.scaled(x, i)
        c_dep = self._pick(c_own, c_other, dep_whose)
        dep = self.estimators[i](c_dep, z) if dependence == "club" else orthogonality(z, c_dep)
        rep = torch.cat([z, self._pick(c_own, c_other, comp_whose)], dim=1)
        if completeness == "recon":
            error = (self.decoders[i](rep) - x_scaled) ** 2
            valid = self._valid_values(x, i)
            comp = (error if valid is None else error * valid).mean()
        else:
            comp = self.critics[i](rep, x_scaled)
        return dep, comp

    def specific_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, c1: torch.Tensor | None = None, c2: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Stage-2 loss terms per modality (see :meth:`term_names`) and their total (``loss``).

        The total is ``sum_i dependence_i + lam / 2 * completeness_i``. The shared features ``c1``, ``c2`` are
        computed from ``x1``, ``x2`` unless given (they are fixed in stage 2).
        """
        if not self.has_specific:
            raise RuntimeError("The CLIP-only objective has no stage 2.")
        c = self._shared_pair(x1, x2, c1, c2)
        out: dict[str, torch.Tensor] = {}
        total = x1.new_zeros(())
        for i, x in enumerate((x1, x2)):
            dep, comp = self.specific_terms(x, i, c[i], c[1 - i])
            names = self.term_names(i)
            out[names[0]], out[names[1]] = dep, comp
            total = total + dep + 0.5 * self.lam * comp
        out["loss"] = total
        return out

    def _estimator_pairs(self, xs, cs, modalities) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(i, condition, z)`` of each modality's CLUB estimator, with ``z`` from the current encoder (no grad)."""
        for i in modalities:
            with torch.no_grad():
                z = self.specific(xs[i], i)
            yield i, self._pick(cs[i], cs[1 - i], self.terms[1]), z

    def estimator_loss(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        c1: torch.Tensor | None = None,
        c2: torch.Tensor | None = None,
        modalities: tuple[int, ...] = (0, 1),
    ) -> torch.Tensor:
        """Negative log-likelihood of the CLUB estimators on a batch, with the encoders held fixed."""
        c = self._shared_pair(x1, x2, c1, c2)
        pairs = self._estimator_pairs((x1, x2), c, modalities)
        return sum(self.estimators[i].learning_loss(cond, z) for i, cond, z in pairs)

    @torch.no_grad()
    def refit_estimators(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        c1: torch.Tensor | None = None,
        c2: torch.Tensor | None = None,
        modalities: tuple[int, ...] = (0, 1),
    ) -> None:
        """Refit closed-form (``"moments"``) CLUB estimators on the given cells."""
        c = self._shared_pair(x1, x2, c1, c2)
        for i, cond, z in self._estimator_pairs((x1, x2), c, modalities):
            self.estimators[i].fit(cond, z)

    def update_estimators(
        self,
        batches: list[dict[str, torch.Tensor]],
        optimizer: torch.optim.Optimizer | None,
        backward=torch.Tensor.backward,
        modalities: tuple[int, ...] = (0, 1),
    ) -> torch.Tensor | None:
        """Fit the CLUB estimators before an encoder step: one gradient step per batch, or one closed-form refit.

        ``batches`` hold ``x1``, ``x2``, ``c1``, ``c2`` (fresh random cells). Returns the last negative
        log-likelihood of gradient-trained estimators, else ``None``. ``backward`` lets a Lightning plan pass its
        ``manual_backward``.
        """
        if not len(self.estimators):
            return None
        if not self.trains_estimator:
            self.refit_estimators(*(torch.cat([b[k] for b in batches]) for k in ("x1", "x2", "c1", "c2")), modalities)
            return None
        for b in batches:
            nll = self.estimator_loss(b["x1"], b["x2"], b["c1"], b["c2"], modalities)
            optimizer.zero_grad()
            backward(nll)
            optimizer.step()
        return nll.detach()

    # ----------------------------------------------------------------------------------------- scvi-tools API
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        return {"x1": tensors[X1_KEY], "x2": tensors[X2_KEY]}

    @auto_move_data
    def inference(self, x1: torch.Tensor, x2: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shared representations of both modalities, and their specific ones where the objective has them."""
        out = {"shared1": self.shared(x1, 0), "shared2": self.shared(x2, 1)}
        if self.has_specific:
            out.update(specific1=self.specific(x1, 0), specific2=self.specific(x2, 1))
        return out

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict[str, torch.Tensor]:
        return {k: inference_outputs.get(k) for k in ("shared1", "shared2", "specific1", "specific2")}

    @auto_move_data
    def generative(self, shared1, shared2, specific1=None, specific2=None) -> dict[str, torch.Tensor]:
        """Reconstructions :math:`g_i(Z_i, C_i)` of both modalities (empty for objectives without decoders)."""
        if not len(self.decoders):
            return {}
        return {
            "reconstruction1": self.reconstruct(specific1, shared1, 0),
            "reconstruction2": self.reconstruct(specific2, shared2, 1),
        }

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Stage-2 objective of a batch, as an scvi-tools :class:`~scvi.module.base.LossOutput`.

        The completeness terms are reported as reconstruction losses and the dependence terms as extra metrics.
        """
        terms = self.specific_loss(tensors[X1_KEY], tensors[X2_KEY])
        names = [self.term_names(i) for i in range(2)]
        completeness = {f"{names[i][1][:-1]}{i + 1}": terms[names[i][1]] for i in range(2)}
        dependence = {f"{names[i][0][:-1]}{i + 1}": terms[names[i][0]] for i in range(2)}
        return LossOutput(
            loss=terms["loss"],
            reconstruction_loss=completeness,
            extra_metrics=dependence,
            n_obs_minibatch=tensors[X1_KEY].shape[0],
        )

    @torch.inference_mode()
    def sample(self, tensors: dict[str, torch.Tensor], n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of both modalities (the decoders are deterministic, so ``n_samples`` must be 1)."""
        if n_samples != 1:
            raise ValueError("IndiSeek's decoders are deterministic: `n_samples` must be 1.")
        if not len(self.decoders):
            raise ValueError(f"The {self.objective!r} objective has no decoders to sample from.")
        _, generative_outputs = self.forward(tensors, compute_loss=False)
        return generative_outputs["reconstruction1"], generative_outputs["reconstruction2"]
