"""The IndiSeek networks and losses (an scvi-tools module)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from indiseek._constants import OBJECTIVES, X1_KEY, X2_KEY
from indiseek.nn import MLP, GaussianCLUB, symmetric_info_nce

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
    lam
        :math:`\lambda`, the weight of the reconstruction term.
    objective
        ``"indiseek"`` (CLUB against the other modality's shared features) or ``"indiseek_noswitch"`` (against the
        same modality's, the paper's IndiSeek0 ablation).
    standardize_specific
        Batch-normalise :math:`Z_i` (no affine parameters), so that the encoder cannot inflate the scale of
        :math:`Z_i` to outrun the estimator; :math:`g_i` undoes any scale it needs.
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
        lam: float = 10.0,
        objective: str = "indiseek",
        standardize_specific: bool = True,
    ):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}; choose one of {OBJECTIVES}.")
        self.objective = objective
        self.lam = float(lam)
        self.n_shared, self.n_specific = n_shared, n_specific
        n_inputs = (n_input1, n_input2)
        self.shared_encoders = nn.ModuleList([MLP(n, n_shared, n_hidden=n_hidden, n_layers=n_layers) for n in n_inputs])
        self.logit_scale = nn.Parameter(torch.tensor(_INIT_LOGIT_SCALE))
        self.specific_encoders = nn.ModuleList(
            [
                nn.Sequential(
                    MLP(n, n_specific, n_hidden=n_hidden, n_layers=n_layers),
                    _standardizer(n_specific) if standardize_specific else nn.Identity(),
                )
                for n in n_inputs
            ]
        )
        self.decoders = nn.ModuleList(
            [MLP(n_specific + n_shared, n, n_hidden=n_hidden, n_layers=n_layers) for n in n_inputs]
        )
        self.estimators = nn.ModuleList(
            [GaussianCLUB(n_shared, n_specific, n_hidden=n_hidden, n_layers=n_estimator_layers) for _ in n_inputs]
        )
        self.n_inputs = n_inputs
        self.register_buffer("input_scale", torch.tensor([float(n) for n in n_inputs]))

    # ----------------------------------------------------------------------------------------- parameters
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained in stage 1."""
        yield from self.shared_encoders.parameters()
        yield self.logit_scale

    def specific_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder and decoder parameters trained in stage 2."""
        yield from self.specific_encoders.parameters()
        yield from self.decoders.parameters()

    def estimator_parameters(self) -> Iterator[nn.Parameter]:
        """CLUB estimator parameters, fitted by maximum likelihood in stage 2."""
        yield from self.estimators.parameters()

    @torch.no_grad()
    def set_input_scale(self, x1: torch.Tensor, x2: torch.Tensor, names: tuple[str, str] = ("x1", "x2")) -> None:
        r"""Record :math:`E\|X_i\|^2` over the training cells (``names`` are used in error messages)."""
        for i, x in enumerate((x1, x2)):
            scale = (x.double() ** 2).sum(dim=1).mean()
            if not torch.isfinite(scale) or scale <= 0:
                raise ValueError(
                    f"Modality {names[i]!r} has E||X||^2 = {float(scale)}: its values are all zero or not finite, "
                    "so the reconstruction term cannot be scaled. Check the input representation."
                )
            self.input_scale[i] = scale.to(self.input_scale.dtype)

    # ----------------------------------------------------------------------------------------- representations
    def scaled(self, x: torch.Tensor, i: int) -> torch.Tensor:
        r""":math:`\tilde X_i = X_i / r_i`, the input in the units that the networks see."""
        return x * torch.rsqrt(self.input_scale[i] / self.n_inputs[i])

    def shared(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Shared representation :math:`C_i` of modality ``i`` (0 or 1), L2-normalised."""
        return nn.functional.normalize(self.shared_encoders[i](self.scaled(x, i)), dim=1)

    def specific(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Specific representation :math:`Z_i` of modality ``i`` (0 or 1)."""
        return self.specific_encoders[i](self.scaled(x, i))

    def reconstruct(self, z: torch.Tensor, c: torch.Tensor, i: int) -> torch.Tensor:
        """Decoder :math:`g_i(Z_i, C_i)`, in the input's original units."""
        return self.decoders[i](torch.cat([z, c], dim=1)) * torch.sqrt(self.input_scale[i] / self.n_inputs[i])

    def _club_condition(self, c: tuple[torch.Tensor, torch.Tensor], i: int) -> torch.Tensor:
        """Shared features that ``Z_i`` must be independent of: the other modality's, or its own (no switch)."""
        return c[1 - i] if self.objective == "indiseek" else c[i]

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

    def specific_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, c1: torch.Tensor | None = None, c2: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        r"""Stage-2 loss terms per modality (``club{i}``, ``recon{i}``) and their total (``loss``).

        ``recon{i}`` is the squared reconstruction error divided by :math:`E\|X_i\|^2` (computed on the scaled
        input, see the class docstring), so that the total is ``sum_i club{i} + lam / 2 * recon{i}``. The shared
        features ``c1``, ``c2`` are computed from ``x1``, ``x2`` unless given (they are fixed in stage 2).
        """
        xs = (x1, x2)
        c = self._shared_pair(x1, x2, c1, c2)
        out: dict[str, torch.Tensor] = {}
        total = x1.new_zeros(())
        for i, x in enumerate(xs):
            z = self.specific(x, i)
            club = self.estimators[i](self._club_condition(c, i), z)
            recon = ((self.decoders[i](torch.cat([z, c[i]], dim=1)) - self.scaled(x, i)) ** 2).mean()
            out[f"club{i}"], out[f"recon{i}"] = club, recon
            total = total + club + 0.5 * self.lam * recon
        out["loss"] = total
        return out

    def estimator_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, c1: torch.Tensor | None = None, c2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Negative log-likelihood of the CLUB estimators on a batch, with the encoders held fixed."""
        c = self._shared_pair(x1, x2, c1, c2)
        with torch.no_grad():
            z = (self.specific(x1, 0), self.specific(x2, 1))
        return sum(self.estimators[i].learning_loss(self._club_condition(c, i), z[i]) for i in range(2))

    # ----------------------------------------------------------------------------------------- scvi-tools API
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        return {"x1": tensors[X1_KEY], "x2": tensors[X2_KEY]}

    @auto_move_data
    def inference(self, x1: torch.Tensor, x2: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shared and specific representations of both modalities."""
        return {
            "shared1": self.shared(x1, 0),
            "shared2": self.shared(x2, 1),
            "specific1": self.specific(x1, 0),
            "specific2": self.specific(x2, 1),
        }

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict[str, torch.Tensor]:
        return {k: inference_outputs[k] for k in ("shared1", "shared2", "specific1", "specific2")}

    @auto_move_data
    def generative(self, shared1, shared2, specific1, specific2) -> dict[str, torch.Tensor]:
        """Reconstructions :math:`g_i(Z_i, C_i)` of both modalities."""
        return {
            "reconstruction1": self.reconstruct(specific1, shared1, 0),
            "reconstruction2": self.reconstruct(specific2, shared2, 1),
        }

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Stage-2 objective of a batch, as an scvi-tools :class:`~scvi.module.base.LossOutput`."""
        terms = self.specific_loss(tensors[X1_KEY], tensors[X2_KEY])
        recon = {f"reconstruction{i + 1}": terms[f"recon{i}"] for i in range(2)}
        extra = {f"club{i + 1}": terms[f"club{i}"] for i in range(2)}
        return LossOutput(
            loss=terms["loss"], reconstruction_loss=recon, extra_metrics=extra, n_obs_minibatch=tensors[X1_KEY].shape[0]
        )

    @torch.inference_mode()
    def sample(self, tensors: dict[str, torch.Tensor], n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of both modalities (the decoders are deterministic, so ``n_samples`` must be 1)."""
        if n_samples != 1:
            raise ValueError("IndiSeek's decoders are deterministic: `n_samples` must be 1.")
        _, generative_outputs = self.forward(tensors, compute_loss=False)
        return generative_outputs["reconstruction1"], generative_outputs["reconstruction2"]
