"""tf.data pipelines over the loaded arrays: one epoch per iteration, in an order that
depends only on the seed and the epoch (so resumed runs see the same batches), each batch
one gather, optionally cut among the replicas of a cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import tensorflow

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int | None,
    shuffle: bool,
    epoch: tf.Variable,
    pieces: ReplicaShare | None = None,
    scale: float | None = None,
) -> tf.data.Dataset:
    """One epoch of batches per iteration: the epoch whose order it yields is the value of
    `epoch` (an int64 tf.Variable) when the iteration starts.

    Epoch e's order is a stateless shuffle seeded by (seed, e): it depends on nothing that
    happened before, so a run resumed at epoch 3 sees exactly the batches an uninterrupted
    run saw in its epoch 3 (tf.data's `shuffle` would instead continue one random stream
    across epochs). Each epoch ends with its own partial batch. Without `shuffle`, every
    epoch is in the arrays' order.

    One dataset per epoch rather than all epochs back to back: with `steps_per_epoch`,
    Keras reads the epochs from one running iterator, and with `steps_per_execution` N it
    runs N steps per call whatever the epoch has left, so an epoch's last call took the
    first batches of the next epoch (and Keras warned at the end that the input "ran out
    of data"). An iterator per epoch ends each call at the epoch's last batch.
    """
    tf = tensorflow()
    n = len(x)
    seed_t = tf.constant(0 if seed is None else seed, tf.int64)

    def order(_: Any) -> Any:
        indices = tf.range(n, dtype=tf.int64)
        if not shuffle:
            return indices
        # Read when the iteration starts, i.e. after the epoch's on_epoch_begin.
        e = tf.cast(epoch.read_value(), tf.int64)
        return tf.random.experimental.stateless_shuffle(indices, seed=tf.stack([seed_t, e]))

    return _batches(x, y, batch_size, tf.data.Dataset.range(1).map(order), pieces, scale)


def eval_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    pieces: ReplicaShare | None = None,
    scale: float | None = None,
) -> tf.data.Dataset:
    """The examples once, in order, batched (for validation and test)."""
    tf = tensorflow()
    orders = tf.data.Dataset.from_tensors(tf.range(len(x), dtype=tf.int64))
    return _batches(x, y, batch_size, orders, pieces, scale)


@dataclass(frozen=True)
class ReplicaShare:
    """This input pipeline's share of every batch when several replicas train together.

    Each batch (of the configured, global size) is cut into `total` near-equal pieces, one
    per replica in the cluster; this pipeline yields pieces `first` .. `first + count - 1`
    of each batch in turn, so the replicas of all workers together see exactly the
    batches one device would.
    """

    total: int
    first: int
    count: int


def index_batches(
    orders: Any, n: int, batch_size: int, pieces: ReplicaShare | None = None
) -> tf.data.Dataset:
    """The batches of indices of the one index vector in `orders`: full batches, then the
    epoch's own partial one; with `pieces`, this pipeline's share of each (ReplicaShare)."""
    tf = tensorflow()
    full = n // batch_size

    def cut(indices: Any) -> Any:
        batches = tf.data.Dataset.from_tensor_slices(
            tf.reshape(indices[: full * batch_size], (full, batch_size))
        )
        if n % batch_size:
            batches = batches.concatenate(
                tf.data.Dataset.from_tensors(indices[full * batch_size :])
            )
        return batches if pieces is None else batches.flat_map(own_pieces)

    def own_pieces(batch: Any) -> Any:
        size = tf.shape(batch, out_type=tf.int64)[0]
        return tf.data.Dataset.range(pieces.first, pieces.first + pieces.count).map(
            lambda k: batch[size * k // pieces.total : size * (k + 1) // pieces.total]
        )

    return orders.flat_map(cut)


def _batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    orders: Any,
    pieces: ReplicaShare | None = None,
    scale: float | None = None,
) -> tf.data.Dataset:
    """Batches of the one index vector in `orders`, each one a single gather (as Keras's
    own array adapter does): no per-example work in Python or in tf.data. With `scale`,
    x holds uint8 pixels and each batch is divided by it in float32 (see data.Splits).

    No `cache()`: the examples already sit in memory as one tensor, and a batch costs one
    gather; caching would only copy them again.
    """
    tf = tensorflow()
    n = len(x)

    def gather(indices: Any, arrays: Any) -> Any:
        x = tf.gather(arrays[0], indices)
        if scale is not None:
            # An IEEE float32 division, as data._divided makes: the same bits as NumPy gives.
            x = tf.cast(x, tf.float32) / tf.constant(scale, tf.float32)
        return x, tf.gather(arrays[1], indices)

    # One gather thread, two batches ahead, no autotuner: a gather costs far less than a
    # training step, and on 2 cores the autotuner's thread and extra parallel gathers
    # compete with the step's own threads. Measured (BENCHMARKS.md, configs/mnist.yaml on
    # Fashion-MNIST, 4 alternating runs each): as fast as AUTOTUNE on a quiet machine; under
    # background load, median 38,172 against 31,841 samples/s, slowest 32,555 against 22,458.
    # Under op determinism TensorFlow rewrites a parallel map into a sequential one and logs
    # an error line about the attribute it drops; ask for the sequential map directly then.
    parallel = None if compat.op_determinism_enabled() else 1
    dataset = tf.data.Dataset.zip(
        index_batches(orders, n, batch_size, pieces), tf.data.Dataset.from_tensors((x, y)).repeat()
    ).map(gather, num_parallel_calls=parallel)
    # flat_map hides the length; Keras warns "ran out of data" at the end of a dataset
    # whose length it does not know.
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(
            math.ceil(n / batch_size) * (1 if pieces is None else pieces.count)
        )
    )
    # The static optimizations serialise the pipeline graph, big captured arrays included;
    # Keras turns them off for the same reason.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return dataset.with_options(options).prefetch(2)
