"""The loss terms of each objective and the fitting of the estimators: a mixin of :class:`IndiSeekModule`."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from indiseek._constants import BATCH_KEY
from indiseek.nn import orthogonality, symmetric_info_nce

#: The cap on CLIP's inverse temperature (100), as in Radford et al. (2021).
_MAX_LOGIT_SCALE = float(torch.log(torch.tensor(100.0)))


class LossTerms:
    """The objectives' dependence and completeness terms, and the estimators' likelihoods (needs the module's nets)."""

    def shared_terms(self, x1: torch.Tensor, x2: torch.Tensor, batch: torch.Tensor | None = None) -> dict:
        """Stage-1 loss (``"loss"``) and its terms: the symmetric InfoNCE (CLIP) loss between :math:`C_1` and :math:`C_2`.

        With a batch covariate (one-hot ``batch``), negatives come from the pair's own batch and the loss adds the
        batch CLUB bound of each :math:`C_i` (``batch_shared_<name>``), with the classifiers held as they are.
        """
        with torch.no_grad():
            self.logit_scale.clamp_(max=_MAX_LOGIT_SCALE)
        c = (self.shared(x1, 0), self.shared(x2, 1))
        if not self.n_batch or batch is None:
            return {"loss": symmetric_info_nce(*c, self.logit_scale)}
        terms = {"nce": symmetric_info_nce(*c, self.logit_scale, groups=batch.argmax(dim=1))}
        for i in range(2):
            terms[f"batch_shared_{self.modality_names[i]}"] = self.shared_batch_estimators[i](c[i], batch)
        return {"loss": terms["nce"] + self.batch_weight * sum(v for k, v in terms.items() if k != "nce"), **terms}

    def shared_loss(self, x1: torch.Tensor, x2: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Stage-1 loss (:meth:`shared_terms`)."""
        return self.shared_terms(x1, x2, batch)["loss"]

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

    def observe_shared(self, c: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Show the stage-1 batch estimators a training batch of shared features ``c`` (their running moments)."""
        for i in range(2):
            self.shared_batch_estimators[i].observe(c[i])

    def shared_estimator_loss(self, c: tuple[torch.Tensor, torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the stage-1 batch classifiers on fixed shared features ``c`` (:math:`C_1, C_2`)."""
        return sum(self.shared_batch_estimators[i].learning_loss(c[i].detach(), batch) for i in range(2))

    def estimator_loss(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative log-likelihood of the estimators on a batch, with the encoders held fixed.

        The CLUB estimators fitted by gradient steps (``estimator="mlp"``) and, with a batch covariate, the batch
        classifiers of :math:`Z_i`.
        """
        total = 0.0
        batch = tensors.get(BATCH_KEY)
        for i, cond, z in self._estimator_pairs(tensors):
            if self.uses_club and self.estimator_kind == "mlp":
                total = total + self.estimators[i].learning_loss(cond, z)
            if self.fits_batch_estimators and batch is not None:
                total = total + self.batch_estimators[i].learning_loss(z, batch)
        return total

    @torch.no_grad()
    def refit_estimators(self, tensors: dict[str, torch.Tensor]) -> None:
        """Refit closed-form (``"moments"``) CLUB estimators on the cells of ``tensors``."""
        if not self.uses_club or self.estimator_kind != "moments":
            return
        for i, cond, z in self._estimator_pairs(tensors):
            self.estimators[i].fit(cond, z)

    def _estimator_pairs(self, tensors: dict[str, torch.Tensor]) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(i, condition, z)`` of each present modality's CLUB estimator, ``z`` from the current encoder (no grad)."""
        inputs = self._get_inference_input(tensors)
        x, c = inputs["x"], self._fixed_shared(inputs["x"], inputs["c"])
        for i in (k for k in range(2) if x[k] is not None):
            with torch.no_grad():
                z = self.specific_for_dependence(x[i], i, inputs["batch"])
            yield i, self.club_condition(c[i], c[1 - i]), z
