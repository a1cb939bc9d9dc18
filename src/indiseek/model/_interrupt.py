"""Graceful Ctrl-C during training."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl


class StopOnInterrupt(pl.Callback):
    """Turn the first Ctrl-C during training into a clean stop after the current step.

    Lightning answers Ctrl-C with ``sys.exit(1)`` and leaves SIGINT ignored afterwards. While this callback's
    :meth:`catching` context is active, the first Ctrl-C only sets :attr:`requested`; the callback then asks the
    trainer to stop, so the stage ends through its normal hooks (stage 1 restores its best weights) and the model
    stays usable. A second Ctrl-C interrupts immediately.
    """

    def __init__(self):
        super().__init__()
        self.requested = False

    @contextmanager
    def catching(self) -> Iterator[StopOnInterrupt]:
        """Install the SIGINT handler (main thread only) and restore the previous one on exit."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            self.requested = True
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C goes to the previous handler

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if self.requested:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: pl.Trainer, *args) -> None:
        if self.requested:
            trainer.should_stop = True
