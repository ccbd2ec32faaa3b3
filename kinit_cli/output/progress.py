"""The live training display: a Keras callback drawing rich progress on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from kinit_cli.runtime.imports import keras

# The bar is redrawn from the batch hook, at most this often, and never from rich's own
# refresh thread, whose draws took CPU and the GIL from the training step on 2 cores
# (BENCHMARKS.md, "What the tables and the progress display cost").
REFRESH_S = 0.2


def format_logs(logs: dict[str, Any]) -> str:
    return "  ".join(f"{k} {float(v):.4f}" for k, v in logs.items())


class ProgressDisplay(keras().callbacks.Callback):
    """Per-epoch progress bar (step, loss, metrics, samples/s, ETA) and one line per epoch.

    Args:
        steps: batches per epoch; `samples` training samples, `batch_size` per batch.
        epoch_line: where each finished epoch's line goes.
    """

    def __init__(
        self,
        console: Console,
        *,
        epochs: int,
        steps: int,
        batch_size: int,
        samples: int,
        epoch_line: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.console = console
        self.epochs, self.steps, self.batch_size, self.samples = epochs, steps, batch_size, samples
        self.epoch_line = epoch_line
        self.progress: Progress | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[logs]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
                auto_refresh=False,
            )
            self.progress.start()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch
        self.seen = 0  # steps done in this epoch
        self.start = self.last = time.perf_counter()
        if self.progress:
            self.task = self.progress.add_task(
                "", total=self.steps, logs="", rate="", epoch=f"{epoch + 1}/{self.epochs}"
            )
            self.progress.refresh()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen = batch + 1
        now = time.perf_counter()
        if not self.progress or now - self.last < REFRESH_S:
            return
        self.last = now
        done = min((batch + 1) * self.batch_size, self.samples)
        self.progress.update(
            self.task,
            completed=min(batch + 1, self.steps),
            logs=format_logs(logs or {}),
            rate=f"{done / (now - self.start):,.0f} samples/s",
            refresh=True,
        )

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        seconds = time.perf_counter() - self.start
        if self.progress:
            self.progress.remove_task(self.task)
        if self.model.stop_training and self.seen < self.steps:
            # Stopped part-way (a signal, a NaN): not an epoch trained, and not kept.
            self.epoch_line(
                f"epoch {epoch + 1}/{self.epochs}  stopped after {self.seen} of {self.steps} "
                "steps (not kept)"
            )
            return
        self.epoch_line(
            f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}  "
            f"{self.samples / seconds:,.0f} samples/s  {seconds:.1f}s"
        )

    def on_train_end(self, logs: Any = None) -> None:
        if self.progress:
            self.progress.stop()
