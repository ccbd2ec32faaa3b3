"""Keras callbacks every training run gets: an epoch-exact, atomic backup, a stop on
non-finite loss, the epoch number the training data reads its order from, and each epoch's
wall time; and, with train.weight_history, the weights' statistics every epoch.

Imported only by `train`, once TensorFlow is loaded.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.runtime.imports import keras
from kinit_cli.storage import checkpoint, rundir
from kinit_cli.weights import stats
from kinit_cli.weights.propagation import layer_outputs

_callbacks = keras().callbacks


class EpochBackup(_callbacks.Callback):
    """The run's backup after every full epoch (checkpoint.py), restored when training begins.

    Keras's BackupAndRestore writes its files in place (see checkpoint.py for what that cost),
    so this callback does the same job through atomic writes. It saves nothing for an epoch a
    signal or a NaN cut short (Keras calls on_epoch_end for those too; saving one as complete
    would make --resume skip the rest of it), and it keeps the backup when training ends, so
    that a completed run can continue with more epochs.
    """

    def __init__(self, run_dir: Path, epochs: int = 0) -> None:
        super().__init__()
        self.dir = run_dir / rundir.BACKUP
        self.run_dir = run_dir
        self.skip = False
        self.epochs = epochs  # epochs the backup holds (as read before training)
        self.rows: list[dict[str, Any]] = []  # the history the backup holds

    def on_train_begin(self, logs: Any = None) -> None:
        state = checkpoint.read(self.dir)
        if state is None:
            return
        checkpoint.restore(state, self.model)
        self.epochs = state.epoch
        if state.history is not None:
            self.rows = state.history
        else:  # a backup Keras wrote: the history is in history.csv, if anywhere
            rows = rundir.read_history(self.run_dir / rundir.HISTORY)
            self.rows = [r for r in rows if r["epoch"] < state.epoch]

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.skip:
            return
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        checkpoint.commit(self.dir, epoch + 1, self.model, rows)
        self.epochs, self.rows = epoch + 1, rows
        # For whoever watches the run; --resume reads the history from the backup.
        rundir.write_history(self.run_dir / rundir.HISTORY, rows)


class SafeStop(_callbacks.Callback):
    """Stops at the first non-finite loss, or on request (a signal), keeping the weights of
    the last full epoch.

    A request that comes once an epoch's steps are all done (while the callbacks handle its
    end) cuts nothing short: that epoch is backed up like any other, and training stops.
    """

    def __init__(self, backup: EpochBackup) -> None:
        super().__init__()
        self.backup = backup
        self.good: list[Any] = []
        self.epoch = 0
        self.failed: tuple[int, int, float] | None = None
        self.interrupted: int | None = None
        self.between_epochs = True
        self.seen = 0  # steps done in the current epoch
        self.steps = 0  # training steps (calls, with steps_per_execution) of the whole fit

    def on_train_begin(self, logs: Any = None) -> None:
        self.good = self.model.get_weights()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch
        self.between_epochs = False
        self.seen = 0
        if self.interrupted is not None:  # Keras still starts the epoch, and cuts it short
            self.backup.skip = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen = batch + 1
        self.steps += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not self.failed and not math.isfinite(float(loss)):
            self.failed = (self.epoch, batch, float(loss))
            self.backup.skip = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.seen == 0:  # Keras ends an epoch whose data ran out at once: none trained
            self.backup.skip = True
        if not self.failed and self.interrupted is None:
            self.good = self.model.get_weights()
        self.between_epochs = True

    def interrupt(self, signum: int) -> None:
        self.interrupted = signum
        # Once an epoch's last step is done its end only remains: that epoch is complete.
        steps = (self.params or {}).get("steps")
        done = self.between_epochs or (steps is not None and self.seen >= steps)
        if not done:
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


class WeightHistory(_callbacks.Callback):
    """weight-history.csv: each variable's mean, std, L2 norm and relative change from its
    initial value, at the start (epoch 0) and after every full epoch; and
    activations-init.json: each layer's output over the first training batch, before
    training.

    It only reads: no random draw, no new variable, so the weights train exactly as without
    it. An epoch the backup skips (cut short by a signal or a non-finite loss) gets no rows.
    Rows are appended an epoch at a time; --resume keeps those up to the epoch its backup
    holds and drops the rest (rows of an epoch whose backup a crash lost).
    """

    def __init__(
        self,
        run_dir: Path,
        weights: Sequence[Any],
        initial: dict[str, np.ndarray],
        initial_epoch: int,
        backup: EpochBackup,
        probe: Any = None,
    ) -> None:
        super().__init__()
        self.path = run_dir / rundir.WEIGHT_HISTORY
        self.activations_path = run_dir / rundir.ACTIVATIONS
        self.weights = list(weights)
        self.initial = initial
        self.initial_epoch = initial_epoch
        self.backup = backup
        self.probe = probe  # the first training batch as the model takes it; None: no record

    def on_train_begin(self, logs: Any = None) -> None:
        kept = _rows_up_to(self.path, self.initial_epoch) if self.initial_epoch else None
        if kept is None:  # a new run, or a resumed one that recorded none
            kept = self._lines(0, lambda w: self.initial[w.path])
        header = ",".join(rundir.WEIGHT_HISTORY_COLUMNS) + "\n"
        rundir.write_text(self.path, header + kept)
        if self.initial_epoch == 0 and self.probe is not None:
            self._write_activations()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.backup.skip:
            return
        text = self._lines(epoch + 1, lambda w: np.asarray(w.variable.numpy()))
        with self.path.open("a", encoding="utf-8") as f:  # one write: a whole epoch or none
            f.write(text)

    def _lines(self, epoch: int, value: Callable[[Any], np.ndarray]) -> str:
        """The CSV rows of one epoch, each variable read and scanned in turn (one host copy
        at a time), with the statistics weights-init.json holds; an undefined relative change
        (a variable that started at zero) is left empty."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        nan = float("nan")
        for w in self.weights:
            array = value(w)
            m = stats.moments(array)
            mean, std = (m.mean, math.sqrt(m.m2 / m.count)) if m.count else (nan, nan)
            relative = stats.change(self.initial[w.path], array).relative
            row = [epoch, w.path, mean, std, math.sqrt(m.sumsq), relative]
            writer.writerow(["" if v is None else v for v in row])
        return out.getvalue()

    def _write_activations(self) -> None:
        layers = layer_outputs(self.model, self.probe)
        if layers is None:  # a model without layer outputs: nothing to record
            return
        batch = int(np.shape(self.probe)[0])
        document = {"input": "first training batch", "batch_size": batch, "layers": layers}
        rundir.write_json(self.activations_path, document)


def _rows_up_to(path: Path, epoch: int) -> str | None:
    """The rows of weight-history.csv for epochs up to `epoch`, as written (None when the
    file is missing or holds none); a line cut short by a crash is dropped with later ones."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    kept = []
    for line in lines:
        first, _, rest = line.partition(",")
        fields = next(csv.reader([line]), [])
        whole = line.endswith("\n") and len(fields) == len(rundir.WEIGHT_HISTORY_COLUMNS)
        if not (first.isdigit() and rest and whole) or int(first) > epoch:
            continue
        kept.append(line)
    return "".join(kept) or None
