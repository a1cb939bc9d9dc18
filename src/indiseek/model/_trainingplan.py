"""The two-stage training plan: CLIP, then the specific encoders in alternation with their CLUB estimators."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
import numpy as np
import torch

from indiseek._constants import BATCH_KEY, STAGES

from ._module import C_KEYS, IndiSeekModule

#: Tensors of a stage-2 batch: the inputs, the fixed shared features and the one-hot batch covariate (if any).
TENSOR_KEYS = ("x1", "x2", *C_KEYS, BATCH_KEY)
#: Optimiser steps per loader batch in stage 1, whose steps are too small for Lightning's per-batch overhead (about
#: 1 ms): the loader hands over this many consecutive batches of the shuffled order at once and the plan steps
#: through them, which trains exactly as batch by batch.
SHARED_STEPS_PER_BATCH = 8

Backward = Callable[[torch.Tensor], None]


def default_epochs(n_train: int, batch_size: int, stage: str) -> int:
    """Default epoch cap of a stage.

    Stage 1: up to 20,000 steps (between 50 and 500 epochs); early stopping usually ends it much sooner. Stage 2:
    4,000 encoder steps (between 20 and 300 epochs), each with its estimator steps.
    """
    steps_per_epoch = max(1, n_train // batch_size)
    if stage == "shared":
        return int(np.clip(round(20_000 / steps_per_epoch), 50, 500))
    return int(np.clip(round(4_000 / steps_per_epoch), 20, 300))


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite during training."""


def specific_terms(module: IndiSeekModule, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stage-2 loss (``"loss"``) and its named terms on a batch, through the module's inference, generative, loss."""
    _, _, out = module(batch)
    return {"loss": out.loss, **out.extra_metrics, **out.reconstruction_loss}


def fit_estimators(
    module: IndiSeekModule,
    batches: list[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer | None,
    backward: Backward = torch.Tensor.backward,
) -> torch.Tensor | None:
    """Fit the CLUB estimators with the encoders fixed.

    One maximum-likelihood step per batch, or one closed-form refit on all batches (``estimator="moments"``).

    Parameters
    ----------
    module
        The module whose estimators are fitted.
    batches
        Fresh batches (``x1``, ``x2``, ``c1``, ``c2``; a modality left out is not fitted).
    optimizer
        The estimators' optimiser (``None`` for closed-form estimators).
    backward
        How to back-propagate a loss (a Lightning plan passes its ``manual_backward``).

    Returns
    -------
    The last negative log-likelihood of gradient steps (``None`` for a refit or without estimators).

    Examples
    --------
    >>> import torch
    >>> from indiseek.model import IndiSeekModule, fit_estimators
    >>> module = IndiSeekModule(6, 4, n_hidden=8, n_layers=2)
    >>> optimizer = torch.optim.Adam(module.estimator_parameters(), lr=1e-2)
    >>> batches = [{"x1": torch.randn(32, 6), "x2": torch.randn(32, 4)} for _ in range(5)]
    >>> fit_estimators(module, batches, optimizer).shape
    torch.Size([])
    """
    if not batches:
        return None
    module.refit_estimators({k: torch.cat([b[k] for b in batches]) for k in batches[0]})
    if not module.trains_estimator:
        return None
    for b in batches:
        nll = module.estimator_loss(b)
        optimizer.zero_grad()
        backward(nll)
        optimizer.step()
    return nll.detach()


@contextmanager
def _frozen(params: Iterable[torch.nn.Parameter]) -> Iterator[None]:
    """Keep gradients off ``params`` (the estimators, while the encoders step against them)."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def specific_step(
    module: IndiSeekModule,
    batch: dict[str, torch.Tensor],
    estimator_batches: list[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    estimator_optimizer: torch.optim.Optimizer | None = None,
    *,
    backward: Backward = torch.Tensor.backward,
    check: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """One stage-2 step: the estimators on fresh batches, then the encoders, decoders and critics on the loss.

    The CLUB estimators are fitted first (:func:`fit_estimators`); then one step of the specific encoders, decoders
    and critics follows on the objective's loss (:meth:`~indiseek.model.IndiSeekModule.loss`), with the estimators
    held fixed.

    Several estimator steps per encoder step keep the estimator ahead of the encoder: with one step the encoder can
    exploit a lagging estimator and drive the bound to large negative values.

    Parameters
    ----------
    module
        The module to train.
    batch
        The encoder step's batch (``x1``, ``x2`` and the fixed shared features ``c1``, ``c2``; a modality left out
        is not trained).
    estimator_batches
        Fresh batches for the estimators, one per estimator step.
    optimizer, estimator_optimizer
        Optimisers of the specific networks and of the estimators.
    backward
        How to back-propagate a loss (a Lightning plan passes its ``manual_backward``).
    check
        Called with the estimator's likelihood and with the loss terms before any step uses them (to stop on a
        non-finite value).

    Returns
    -------
    The detached loss terms (``loss``, ``club_<name>``, ``recon_<name>``...; ``estimator_nll`` with estimators).

    Examples
    --------
    >>> import torch
    >>> from indiseek.model import IndiSeekModule, specific_step
    >>> module = IndiSeekModule(6, 4, n_hidden=8, n_layers=2, modality_names=("rna", "prot"))
    >>> adam = lambda params: torch.optim.Adam(params, lr=1e-3)
    >>> batch = lambda: {"x1": torch.randn(32, 6), "x2": torch.randn(32, 4)}
    >>> terms = specific_step(
    ...     module,
    ...     batch(),
    ...     [batch() for _ in range(5)],
    ...     adam(module.specific_parameters()),
    ...     adam(module.estimator_parameters()),
    ... )
    >>> sorted(terms)
    ['club_prot', 'club_rna', 'estimator_nll', 'loss', 'recon_prot', 'recon_rna']
    """
    nll = fit_estimators(module, estimator_batches, estimator_optimizer, backward)
    if nll is not None and check is not None:
        check({"estimator_nll": nll})
    with _frozen(module.estimator_parameters()):
        terms = specific_terms(module, batch)
        detached = {k: v.detach() for k, v in terms.items()}
        if check is not None:
            check(detached)
        optimizer.zero_grad()
        backward(terms["loss"])
        optimizer.step()
    return detached if nll is None else {**detached, "estimator_nll": nll}


class IndiSeekTrainingPlan(pl.LightningModule):
    """Lightning plan for one stage of IndiSeek, with manual optimisation.

    The plan owns every optimiser and their order, and the batches that its data module hands over
    (:attr:`loader_kwargs`):

    * ``stage="shared"``: one Adam step on the symmetric InfoNCE loss per batch; with a batch covariate and
      classifier batch estimators, ``n_estimator_steps`` steps of the batch classifiers on the batch's fixed
      shared features come first.
    * ``stage="specific"``: per batch, :func:`specific_step`: ``n_estimator_steps`` maximum-likelihood steps of the
      CLUB estimators, each on a fresh random batch (or, for ``estimator="moments"``, one closed-form refit on those
      batches together), then one step of the specific encoders, decoders and critics on the objective's loss.

    In stage 1 the weights with the lowest validation loss (with a batch covariate: the lowest InfoNCE,
    :attr:`monitored_term`) are kept and restored when the stage ends. Stage 2 keeps
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
    batch_size
        Cells per optimiser step. In stage 1 the data module hands over :data:`SHARED_STEPS_PER_BATCH` batches at once
        to save per-batch overhead, and the plan steps through them in consecutive chunks of this size (a
        single-cell remainder is dropped).
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
        batch_size: int = 128,
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
    def loader_kwargs(self) -> dict[str, int]:
        """What the plan needs of its :class:`~indiseek.model.InMemoryDataSplitter`.

        The loader's batch size, the optimiser steps per loader batch and the fresh estimator batches attached to
        each batch.
        """
        shared = self.stage == "shared"
        return {
            "batch_size": self.batch_size,
            "steps_per_batch": SHARED_STEPS_PER_BATCH if shared else 1,
            "n_estimator_batches": 0 if shared or not self.module.has_estimators else self.n_estimator_steps,
        }

    @property
    def monitored_term(self) -> str:
        """The term whose validation value early stopping and best-weight restoring watch.

        With a batch covariate, stage 1 watches its InfoNCE alone: the batch bounds are read by classifiers that
        learn as training goes, so their value rises while the batch information falls, as stage 2's CLUB term does.
        """
        return "nce" if self.stage == "shared" and self.module.n_batch else "loss"

    @property
    def monitor(self) -> str:
        """Name of the validation metric that early stopping and best-weight restoring watch."""
        term = self.monitored_term
        return f"{self.stage}_loss_validation" if term == "loss" else f"{term}_validation"

    def _adam(self, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
        params = list(params)
        try:  # the fused kernel is markedly faster for many small tensors, where the device supports it
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, ValueError):
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def configure_optimizers(self):
        """Adam for stage 1; Adam for encoders/decoders and a second Adam for the estimators in stage 2."""
        if self.stage == "shared":
            main = self._adam(self.module.shared_parameters(), self.lr, self.weight_decay)
            if not self.module.fits_batch_estimators:
                return main
            return [main, self._adam(self.module.shared_estimator_parameters(), self.estimator_lr)]
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
        """The stage's loss (``"loss"``) and its named terms on a batch."""
        if self.stage == "shared":
            return self.module.shared_terms(batch["x1"], batch["x2"], batch.get(BATCH_KEY))
        return specific_terms(self.module, batch)

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
        step = self._shared_step if self.stage == "shared" else self._specific_step
        if n <= self.batch_size:
            step(batch)
            return
        for start in range(0, n, self.batch_size):
            if n - start < 2:  # batch statistics need two cells
                break
            step({k: v[start : start + self.batch_size] for k, v in batch.items()})

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        optimizers = self.optimizers()
        return tuple(optimizers) if isinstance(optimizers, list) else (optimizers, None)

    def _shared_step(self, batch: dict[str, torch.Tensor]) -> None:
        optimizer, estimator_optimizer = self._optimizers()
        if estimator_optimizer is not None:  # the batch classifiers first, on the same cells, as in stage 2
            with torch.no_grad():
                c = (self.module.shared(batch["x1"], 0), self.module.shared(batch["x2"], 1))
            self.module.observe_shared(c)  # once per batch: the steps below and the encoder's read the same cells
            for _ in range(self.n_estimator_steps):
                nll = self.module.shared_estimator_loss(c, batch[BATCH_KEY])
                self._check_finite({"estimator_nll": nll.detach()})
                estimator_optimizer.zero_grad()
                self.manual_backward(nll)
                estimator_optimizer.step()
        with _frozen(self.module.shared_estimator_parameters()):
            terms = self._terms(batch)
            self._check_finite({k: v.detach() for k, v in terms.items()})
            optimizer.zero_grad()
            self.manual_backward(terms["loss"])
            optimizer.step()
        self._accumulate("train", terms, batch["x1"].shape[0])

    def _specific_step(self, batch: dict[str, torch.Tensor]) -> None:
        # a copy of the (small) module state, so that a non-finite loss leaves the model exactly as it was before this
        # step: estimator steps and batch-norm statistics change it before the encoder's loss is known
        with torch.no_grad():
            torch._foreach_copy_(self._step_start_state, [t.detach() for t in self._state_tensors])
        steps = range(self.n_estimator_steps) if self.module.has_estimators else range(0)
        fresh = [{k: batch[f"{k}_est"][j] for k in TENSOR_KEYS if f"{k}_est" in batch} for j in steps]
        terms = specific_step(
            self.module, batch, fresh, *self._optimizers(), backward=self.manual_backward, check=self._check_finite
        )
        nll = terms.pop("estimator_nll", None)
        if nll is not None:
            self._accumulate("train", {"estimator_nll": nll}, batch["x1"].shape[0], count=False)
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
        loss = self._sums["validation"][self.monitored_term] / n
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
