"""The input pipeline without TensorFlow, for the JAX and torch backends: NumPy batches with
the guarantees of the tf.data route (pipeline.py).

Epoch e's order is a pure function of (seed, e), so a run resumed at epoch 3 sees the
batches an uninterrupted run saw in its epoch 3; each epoch ends with its own partial
batch; uint8 pixels stay uint8 in memory and each batch is divided by the scale in float32,
the same IEEE division as data._divided. The orders differ from tf.data's stateless
shuffle (another generator), so runs on different backends see different batch orders.

A keras.utils.PyDataset with one worker and no processes: Keras asks for batch i in the
training loop's own thread, so nothing runs ahead of an epoch's start.

Under JAX's DataParallel every batch is split evenly across the devices, so a partial batch
that does not divide is padded with copies of its first examples, weighted 0, while its real
examples are weighted padded/real size: the loss ("sum over batch size", Keras's default
reduction) and the weighted metrics are then those of the real examples alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kinit_cli.runtime.imports import keras


class EpochCounter:
    """The epoch whose order the training batches follow: set by EpochOrder as each begins
    (the tf.data route reads a tf.Variable the same way)."""

    def __init__(self, value: int) -> None:
        self.value = int(value)

    def assign(self, value: int) -> None:
        self.value = int(value)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of range(n) for this seed and epoch, and nothing else."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class Batches(keras().utils.PyDataset):
    """Batches of (x, y) in the order of `epoch` (an EpochCounter; None: the arrays' order)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        scale: float | None = None,
        seed: int | None = None,
        epoch: EpochCounter | None = None,
        pad_to: int = 1,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.pad_to = pad_to
        self.x, self.y, self.batch_size = x, y, batch_size
        self.scale = None if scale is None else np.float32(scale)
        self.seed, self.epoch = (0 if seed is None else seed), epoch
        self._order: np.ndarray | None = None
        self._order_epoch: int | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def _indices(self, i: int) -> Any:
        start, stop = i * self.batch_size, (i + 1) * self.batch_size
        if self.epoch is None:
            return slice(start, stop)
        if self._order_epoch != self.epoch.value:
            self._order = epoch_order(len(self.x), self.seed, self.epoch.value)
            self._order_epoch = self.epoch.value
        assert self._order is not None
        return self._order[start:stop]

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        which = self._indices(i)
        x = self.x[which]
        if self.scale is not None:
            x = x.astype(np.float32) / self.scale
        y = self.y[which]
        if self.pad_to == 1:
            return x, y
        real = len(x)
        size = -(-real // self.pad_to) * self.pad_to
        weights = np.full(size, size / real, np.float32)
        weights[real:] = 0.0
        if size == real:
            weights[:] = 1.0
        fill = np.arange(size - real) % real
        return np.concatenate([x, x[fill]]), np.concatenate([y, y[fill]]), weights


def train_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int | None,
    shuffle: bool,
    epoch: EpochCounter,
    scale: float | None = None,
    pad_to: int = 1,
) -> Batches:
    """One epoch of batches per iteration, in the order of `epoch`'s value."""
    return Batches(x, y, batch_size, scale, seed, epoch if shuffle else None, pad_to)


def eval_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, scale: float | None = None, pad_to: int = 1
) -> Batches:
    """The examples once, in order, batched (for validation and test)."""
    return Batches(x, y, batch_size, scale, pad_to=pad_to)
