"""Training one stage through scvi-tools' runner, and stage 2 along the lambda path of ``lam="auto"``."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from lightning.pytorch.callbacks import EarlyStopping
from scvi import settings
from scvi.model._utils import use_distributed_sampler
from scvi.train import TrainRunner

from ._data import InMemoryDataSplitter
from ._distributed import ddp_strategy
from ._interrupt import StopOnInterrupt
from ._lambda import LAMBDA_PATH, train_path

#: Warnings that the training libraries raise about each other on every fit, which a user cannot act on:
#: Lightning 2.6 builds torch 2.13's deprecated ``LeafSpec`` when it moves each batch to the device.
THIRD_PARTY_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)
#: Where Lightning's rank-zero messages are logged (the logger depends on which Lightning package loaded last).
LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)


class _OnceEach(logging.Filter):
    """Passes each message once and none of Lightning's per-run "`Trainer.fit` stopped" lines."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("`Trainer.fit` stopped") or message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextmanager
def lightning_messages_once() -> Iterator[None]:
    """Within the block, Lightning's start-up messages (devices, tips) appear once, not once per trainer.

    One ``train`` call runs a trainer per stage and per step of the lambda path, up to seven; each would print the
    same lines and a "`Trainer.fit` stopped" line that counts the epochs of that run only.
    """
    once, loggers = _OnceEach(), [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(once)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(once)


class StageTraining:
    """Mixin of :class:`~indiseek.IndiSeek`: how one stage is trained (the model's ``train`` runs the stages)."""

    def _train_lambda_path(self, tensors, split: dict, n_epochs: int, plan_kwargs, runner_kwargs) -> bool:
        """Stage 2 along the lambda path (``lam="auto"``); the segments' histories are joined into one."""
        parts: list[dict[str, pd.DataFrame]] = []

        def segment(n: int) -> bool:
            interrupted = self._train_stage("specific", tensors, split, n, plan_kwargs, runner_kwargs)
            parts.append(self.history_ or {})
            return interrupted

        self.lambda_path_ = train_path(self, segment, tensors, split, n_epochs)
        self.history_ = {key: pd.concat([p[key] for p in parts if key in p], ignore_index=True) for key in parts[0]}
        return len(self.lambda_path_) < len(LAMBDA_PATH)

    def _train_stage(self, stage: str, tensors, split: dict, n_epochs: int, plan_kwargs, runner_kwargs) -> bool:
        """Train one stage through scvi-tools' runner; returns whether Ctrl-C interrupted it (with a warning)."""
        plan = self._training_plan_cls(self.module, stage=stage, **plan_kwargs)
        data = InMemoryDataSplitter(tensors, **split, **plan.loader_kwargs)
        runner_kwargs = {**runner_kwargs, "strategy": ddp_strategy(runner_kwargs["strategy"])}  # a new one per stage
        early_stopping = runner_kwargs.pop("early_stopping") and stage == "shared"
        patience = runner_kwargs.pop("early_stopping_patience")
        interrupt = StopOnInterrupt()
        callbacks = [*(runner_kwargs.pop("callbacks", None) or []), interrupt]  # a new list: scvi's Trainer appends
        if early_stopping and not use_distributed_sampler(runner_kwargs["strategy"]):  # scvi-tools warns under DDP
            # Lightning's callback: scvi-tools' LoudEarlyStopping prints its reason to stdout, under the progress bars
            callbacks.append(EarlyStopping(monitor=plan.monitor, patience=patience, mode="min"))
        self.is_trained_ = False  # each stage's history is kept whole, not appended to the other's
        if stage == "shared":
            self.module.erase_batch_from_shared(None, None)  # stage 1 trains the shared features as they are
        self.module.train()
        runner = TrainRunner(
            self,
            training_plan=plan,
            data_splitter=data,
            max_epochs=n_epochs,
            callbacks=callbacks,
            **{"log_every_n_steps": 1, **runner_kwargs},
        )
        with interrupt.catching(), warnings.catch_warnings():
            for message in THIRD_PARTY_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            runner()
        if "batch" in tensors:
            train = split["train_idx"]
            x, batch = (tensors["x1"][train], tensors["x2"][train]), tensors["batch"][train]
            if stage == "shared" and self.module.shared_erasures:  # fitted on C as stage 1 leaves it
                c = tuple(self._encode(xi, i, "shared") for i, xi in enumerate(x))
                self.module.erase_batch_from_shared(c, batch)
            elif stage == "specific":
                self.module.calibrate_specific(x, batch)
        if stage not in self.trained_stages_:
            self.trained_stages_.append(stage)
        if interrupt.requested:
            n_done = len((self.history_ or {}).get(f"{stage}_loss_train", []))
            warnings.warn(
                f"Training was interrupted in the {stage} stage after {n_done} epoch(s); the model keeps what was "
                "trained so far and later stages were skipped. Call `model.train()` again to continue (e.g. "
                "`model.train(0, None)` to train stage 2 only).",
                UserWarning,
                stacklevel=settings.warnings_stacklevel,
            )
        return interrupt.requested
