"""The two-stage training plan: CLIP, then the specific encoders against their CLUB estimators."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import torch

from indiseek._constants import STAGES

from ._module import IndiSeekModule


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite during training."""


class IndiSeekTrainingPlan(pl.LightningModule):
    """Lightning plan for one stage of IndiSeek, with manual optimisation.

    * ``stage="shared"``: one Adam step on the symmetric InfoNCE loss per batch.
    * ``stage="specific"``: per batch, ``n_estimator_steps`` maximum-likelihood steps of the CLUB estimators, each
      on a fresh random batch (or, for ``estimator="moments"``, one closed-form refit on those batches together),
      then one step of the specific encoders, decoders and critics on the objective's loss. Several estimator
      steps per encoder step keep the estimator ahead of the encoder: with one step the encoder can exploit a
      lagging estimator and drive the bound to large negative values.

    In stage 1 the weights with the lowest validation loss are kept and restored when the stage ends. Stage 2 keeps
    its last weights: its validation loss contains the CLUB estimate of a moving estimator, which rises while the
    estimator learns even as the true dependence falls, so its minimum tends to pick an untrained encoder.
    A non-finite loss stops training with :class:`NonFiniteLossError` naming the stage and term (stage 1 first
    restores its best weights).

    Parameters
    ----------
    module
        The :class:`~indiseek.model.IndiSeekModule` to train.
    stage
        ``"shared"`` or ``"specific"``.
    lr
        Adam learning rate of the encoders (and decoders).
    estimator_lr
        Adam learning rate of the CLUB estimators (default: ``lr``).
    weight_decay
        Adam weight decay.
    n_estimator_steps
        Estimator steps per encoder step in stage 2.
    modality_names
        Names used for the logged metrics (``club_<name>``, ``recon_<name>``).
    batch_size
        Cells per optimiser step. A training batch with more cells is stepped through in consecutive chunks of this
        size (a single-cell remainder is dropped): the data module may hand over several batches at once to save
        per-batch overhead (:class:`~indiseek.model.InMemoryDataSplitter`, ``steps_per_batch``).
    """

    def __init__(
        self,
        module: IndiSeekModule,
        *,
        stage: str,
        lr: float = 1e-3,
        estimator_lr: float | None = None,
        weight_decay: float = 0.0,
        n_estimator_steps: int = 5,
        modality_names: tuple[str, str] = ("x1", "x2"),
        batch_size: int | None = None,
    ):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"Unknown stage {stage!r}; choose one of {STAGES}.")
        if not (lr > 0 and torch.isfinite(torch.tensor(lr))):
            raise ValueError(f"`lr` must be a positive finite number, got {lr}.")
        if n_estimator_steps < 1:
            raise ValueError(f"`n_estimator_steps` must be at least 1, got {n_estimator_steps}.")
        self.module = module
        self.stage = stage
        self.lr = lr
        self.estimator_lr = lr if estimator_lr is None else estimator_lr
        self.weight_decay = weight_decay
        self.n_estimator_steps = n_estimator_steps
        self.modality_names = tuple(modality_names)
        self.batch_size = batch_size
        self.automatic_optimization = False
        self.best_validation_loss = float("inf")
        self._best_state: dict[str, torch.Tensor] | None = None
        # per-epoch sums of the loss terms (weighted by batch size), logged once per epoch: logging every step
        # through Lightning costs several milliseconds per step, as much as a step of the small networks
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "validation": {}}
        self._counts = {"train": 0, "validation": 0}
        self._state_tensors: list[torch.Tensor] = []
        self._step_start_state: list[torch.Tensor] = []

    @property
    def monitor(self) -> str:
        """Name of the validation metric that early stopping and best-weight restoring watch."""
        return f"{self.stage}_loss_validation"

    def _adam(self, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
        params = list(params)
        try:  # the fused kernel is markedly faster for many small tensors, where the device supports it
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, ValueError):
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def configure_optimizers(self):
        """Adam for stage 1; Adam for encoders/decoders and a second Adam for the estimators in stage 2."""
        if self.stage == "shared":
            return self._adam(self.module.shared_parameters(), self.lr, self.weight_decay)
        main = self._adam(self.module.specific_parameters(), self.lr, self.weight_decay)
        if not self.module.trains_estimator:
            return main
        return [main, self._adam(self.module.estimator_parameters(), self.estimator_lr)]

    def on_train_epoch_start(self) -> None:
        """Put the module in training mode.

        scvi-tools' runner leaves the module in evaluation mode after a stage, and Lightning keeps the mode it finds,
        so without this the second stage would run with batch normalisation frozen at its initial statistics.
        """
        self.module.train()
        self._reset("train")

    def on_train_start(self) -> None:
        # buffers that hold the module's state at the start of each step (see `training_step`)
        self._state_tensors = list(self.module.state_dict(keep_vars=True).values())
        self._step_start_state = [t.detach().clone() for t in self._state_tensors]

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    # ------------------------------------------------------------------------------------------------- logging
    def _reset(self, split: str) -> None:
        self._sums[split], self._counts[split] = {}, 0

    def _accumulate(self, split: str, terms: dict[str, torch.Tensor], n: int, count: bool = True) -> None:
        sums = self._sums[split]
        for key, value in terms.items():
            value = value.detach() * n
            sums[key] = sums[key] + value if key in sums else value
        self._counts[split] += n if count else 0

    def _log_epoch(self, split: str) -> None:
        n = self._counts[split]
        if not n:
            return
        sync = self.trainer.world_size > 1
        for key, total in self._sums[split].items():
            name = f"{self.stage}_loss_{split}" if key == "loss" else f"{key}_{split}"
            self.log(name, total / n, on_step=False, on_epoch=True, prog_bar=key == "loss", sync_dist=sync)

    # ------------------------------------------------------------------------------------------------- steps
    def _terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.stage == "shared":
            return {"loss": self.module.shared_loss(batch["x1"], batch["x2"])}
        terms = self.module.specific_loss(batch["x1"], batch["x2"], batch.get("c1"), batch.get("c2"))
        named = {"loss": terms["loss"]}
        for i, name in enumerate(self.modality_names):
            for term in self.module.term_names(i):  # e.g. club0 -> club_rna
                named[f"{term[:-1]}_{name}"] = terms[term]
        return named

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        if not bad:
            return
        if self.stage == "shared" and self._best_state is not None:
            self.restore_best()
            kept = "The weights of the best validation epoch were restored."
        else:
            if self.stage == "specific":
                with torch.no_grad():
                    torch._foreach_copy_([t.detach() for t in self._state_tensors], self._step_start_state)
            kept = "The model was reset to its state before this step."
        raise NonFiniteLossError(
            f"Stage {self.stage!r}: the loss term(s) {bad} became non-finite at epoch {self.current_epoch}. {kept} "
            "Check the input for extreme values, or lower the learning rate."
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """One optimisation step of the current stage per chunk of ``batch_size`` cells of the batch."""
        n = batch["x1"].shape[0]
        if self.batch_size is None or n <= self.batch_size:
            self._optimisation_step(batch)
            return
        for start in range(0, n, self.batch_size):
            if n - start < 2:  # batch statistics need two cells
                break
            self._optimisation_step({k: v[start : start + self.batch_size] for k, v in batch.items()})

    def _optimisation_step(self, batch: dict[str, torch.Tensor]) -> None:
        # in stage 2, a copy of the (small) module state, so that a non-finite loss leaves the model exactly as it was
        # before this step: estimator steps and batch-norm statistics change it before the encoder's loss is known.
        # In stage 1 nothing changes before the check (the shared encoders have no running statistics).
        if self.stage == "specific":
            with torch.no_grad():
                torch._foreach_copy_(self._step_start_state, [t.detach() for t in self._state_tensors])
        optimizers = self.optimizers()
        main = optimizers[0] if isinstance(optimizers, list) else optimizers
        if self.stage == "specific" and len(self.module.estimators):
            estimator = optimizers[1] if isinstance(optimizers, list) else None
            if estimator is not None:
                self.toggle_optimizer(estimator)
            fresh = [{k: batch[f"{k}_est"][j] for k in ("x1", "x2", "c1", "c2")} for j in range(self.n_estimator_steps)]
            nll = self.module.update_estimators(fresh, estimator, self.manual_backward)
            if estimator is not None:
                self.untoggle_optimizer(estimator)
            if nll is not None:
                self._check_finite({"estimator_nll": nll})
                self._accumulate("train", {"estimator_nll": nll}, batch["x1"].shape[0], count=False)
        several = isinstance(optimizers, list)  # toggling keeps the encoder loss's gradients off the estimators
        if several:
            self.toggle_optimizer(main)
        terms = self._terms(batch)
        self._check_finite({k: v.detach() for k, v in terms.items()})
        main.zero_grad()
        self.manual_backward(terms["loss"])
        main.step()
        if several:
            self.untoggle_optimizer(main)
        self._accumulate("train", terms, batch["x1"].shape[0])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Loss terms on a validation batch."""
        self._accumulate("validation", self._terms(batch), batch["x1"].shape[0])

    # ------------------------------------------------------------------------------------------------- best weights
    def on_validation_epoch_start(self) -> None:
        self._reset("validation")

    def on_validation_epoch_end(self) -> None:
        n = self._counts["validation"]
        if n == 0:
            return
        loss = self._sums["validation"]["loss"] / n
        if self.trainer.world_size > 1:  # every process keeps the same best epoch
            loss = self.trainer.strategy.reduce(loss, reduce_op="mean")
        loss = float(loss)
        self._log_epoch("validation")
        if self.trainer.sanity_checking or self.stage != "shared":
            return
        if loss < self.best_validation_loss:
            self.best_validation_loss = loss
            self._best_state = copy.deepcopy(self.module.state_dict())

    def restore_best(self) -> None:
        """Load the weights with the lowest validation loss seen in this stage (if any were recorded)."""
        if self._best_state is not None:
            self.module.load_state_dict(self._best_state)

    def on_train_end(self) -> None:
        self.restore_best()
