"""Keras callbacks every training run gets: an epoch-exact backup, a stop on non-finite loss,
the epoch number the training data reads its order from, and each epoch's wall time.

Imported only by `train`, once TensorFlow is loaded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from kinit_cli.backend import keras

_callbacks = keras().callbacks


class EpochBackup(_callbacks.BackupAndRestore):
    """Keras's BackupAndRestore that skips the epoch a signal or a NaN cut short.

    Keras calls on_epoch_end even for an epoch stopped half-way; saving it as complete
    would make --resume skip the rest of that epoch and end on different weights.
    """

    def __init__(self, backup_dir: Path) -> None:
        super().__init__(str(backup_dir), double_checkpoint=True)
        self.skip = False

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if not self.skip:
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs: Any = None) -> None:
        if not self.skip:  # keep the checkpoint of an unfinished run for --resume
            super().on_train_end(logs)


class Guard(_callbacks.Callback):
    """Stops at the first non-finite loss, or on request (a signal), keeping the weights of
    the last full epoch."""

    def __init__(self, backup: EpochBackup) -> None:
        super().__init__()
        self.backup = backup

    def on_train_begin(self, logs: Any = None) -> None:
        self.good = self.model.get_weights()
        self.epoch = 0
        self.failed: tuple[int, int, float] | None = None
        self.interrupted: int | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not self.failed and not math.isfinite(float(loss)):
            self.failed = (self.epoch, batch, float(loss))
            self._stop()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if not self.failed and self.interrupted is None:
            self.good = self.model.get_weights()

    def interrupt(self, signum: int) -> None:
        self.interrupted = signum
        self._stop()

    def _stop(self) -> None:
        self.backup.skip = True
        self.model.stop_training = True


class EpochOrder(_callbacks.Callback):
    """Tells the training dataset which epoch starts (pipeline.train_dataset reads `epoch` when
    an iteration begins), so every epoch gets its own order, resumed runs included."""

    def __init__(self, epoch: Any) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch.assign(epoch)


class EpochTimer(_callbacks.Callback):
    """Wall seconds of each epoch, keyed by epoch number: the steady per-epoch rate, which the
    whole fit's time hides under one-time costs (tracing the first epoch, building the input
    pipeline).

    Epoch hooks only: the batch hooks it inherits do nothing, so it costs a step two empty
    calls (Keras reads each step's logs for its History whether this timer is there or not).
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[int, float] = {}
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seconds[epoch] = time.perf_counter() - self._start
