"""tf.data pipelines: epoch orders that resume exactly, pieces for replicas, uint8 pixels."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from kinit_cli.data import pipeline
from kinit_cli.training.callbacks import EpochOrder

N, BATCH = 10, 4  # three batches an epoch: 4, 4 and a partial 2
X = np.arange(N, dtype=np.float32).reshape(N, 1) * 10
Y = np.arange(N, dtype=np.int64)


def batches(dataset: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(dataset.as_numpy_iterator())


def epochs_of(items: list[tuple[np.ndarray, np.ndarray]]) -> list[list[int]]:
    """Labels per epoch (three batches each), checking every x still matches its label."""
    for x, y in items:
        np.testing.assert_array_equal(x[:, 0], y * 10)
    return [
        np.concatenate([y for _, y in items[i : i + 3]]).tolist() for i in range(0, len(items), 3)
    ]


def epochs_from(x, y, seed, shuffle, epochs) -> list[tuple[np.ndarray, np.ndarray]]:
    """The batches of `epochs`, each epoch one iteration of one dataset, as `fit` reads it."""
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = pipeline.train_dataset(x, y, BATCH, seed, shuffle, epoch)
    out = []
    for e in epochs:
        epoch.assign(e)
        out += batches(dataset)
    return out


def test_train_dataset_epoch_order_depends_only_on_seed_and_epoch():
    dataset = pipeline.train_dataset(X, Y, BATCH, 7, True, tf.Variable(0, dtype=tf.int64))
    assert len(dataset) == 3
    full = epochs_from(X, Y, 7, True, [0, 1, 2])
    assert [len(y) for _, y in full] == [4, 4, 2] * 3
    assert [(x.dtype, y.dtype) for x, y in full[:1]] == [(np.float32, np.int64)]
    orders = epochs_of(full)
    assert all(sorted(order) == list(range(N)) for order in orders)
    assert orders[0] != orders[1] != orders[2]
    resumed = epochs_from(X, Y, 7, True, [2])
    assert [y.tolist() for _, y in resumed] == [y.tolist() for _, y in full[6:]]
    other_seed = epochs_of(epochs_from(X, Y, 8, True, [0, 1, 2]))
    assert other_seed != orders
    unseeded = epochs_of(epochs_from(X, Y, None, True, [0]))
    assert unseeded == epochs_of(epochs_from(X, Y, 0, True, [0]))


def test_train_dataset_without_shuffle_is_in_order_every_epoch():
    items = epochs_from(X, Y, 7, False, [1, 2])
    assert epochs_of(items) == [list(range(N))] * 2
    assert [len(y) for _, y in items] == [4, 4, 2, 4, 4, 2]


def test_train_dataset_with_whole_batches_only():
    items = epochs_from(X[:8], Y[:8], 1, True, [0, 1])
    assert [len(y) for _, y in items] == [4, 4, 4, 4]


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_pipelines_divide_uint8_pixels_to_the_bits_numpy_gives(scale):
    pixels = np.arange(256, dtype=np.uint8).reshape(64, 4)  # every value a pixel can take
    labels = np.arange(64, dtype=np.int64)
    expected = pixels.astype(np.float32) / np.float32(scale)  # what loading used to store
    evaluated = batches(pipeline.eval_dataset(pixels, labels, 10, scale=scale))
    got = np.concatenate([x for x, _ in evaluated])
    assert got.dtype == np.float32
    assert got.tobytes() == expected.tobytes()
    epoch = tf.Variable(3, dtype=tf.int64)
    trained = batches(pipeline.train_dataset(pixels, labels, 10, 5, True, epoch, scale=scale))
    x, y = (np.concatenate(parts) for parts in zip(*trained, strict=True))
    assert sorted(y.tolist()) == list(range(64))
    assert x.tobytes() == expected[y].tobytes()


def test_eval_dataset_is_in_order_once():
    dataset = pipeline.eval_dataset(X, Y, BATCH)
    assert len(dataset) == 3
    items = batches(dataset)
    assert [y.tolist() for _, y in items] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in items]), X)


def test_pieces_cut_every_batch_among_the_replicas():
    """Three replicas on two workers (one with two): together they hold each whole batch."""
    whole = [y.tolist() for _, y in batches(pipeline.eval_dataset(X, Y, BATCH))]
    worker0 = batches(
        pipeline.eval_dataset(X, Y, BATCH, pipeline.ReplicaShare(total=3, first=0, count=2))
    )
    worker1 = batches(
        pipeline.eval_dataset(X, Y, BATCH, pipeline.ReplicaShare(total=3, first=2, count=1))
    )
    # Batches of 4, 4 and 2 examples cut at size * k // 3; the last batch leaves a piece empty.
    assert [y.tolist() for _, y in worker0] == [[0], [1], [4], [5], [], [8]]
    assert [y.tolist() for _, y in worker1] == [[2, 3], [6, 7], [9]]
    for x, y in worker0 + worker1:
        np.testing.assert_array_equal(x[:, 0], y * 10)
    first, second = worker0[0::2], worker0[1::2]
    rebuilt = [
        a[1].tolist() + b[1].tolist() + c[1].tolist()
        for a, b, c in zip(first, second, worker1, strict=True)
    ]
    assert rebuilt == whole
    epoch = tf.Variable(1, dtype=tf.int64)
    shuffled = pipeline.train_dataset(X, Y, BATCH, 7, True, epoch, pipeline.ReplicaShare(2, 1, 1))
    assert len(shuffled) == 3
    halves = [y.tolist() for _, y in batches(shuffled)]
    full = [y.tolist() for _, y in epochs_from(X, Y, 7, True, [1])]
    assert halves == [b[len(b) // 2 :] for b in full]


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_fit_from_a_resumed_epoch_consumes_the_dataset_exactly(steps_per_execution):
    """Each epoch of `fit` reads its own epoch's three batches, none of the next one's, also
    when one compiled call runs two steps (three batches: the second call runs one)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(N)])
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    epoch = tf.Variable(0, dtype=tf.int64)
    seen: list[list[int]] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append([]),
        on_train_batch_end=lambda b, logs: seen[-1].append(int(model.optimizer.iterations)),
    )
    history = model.fit(
        pipeline.train_dataset(X, Y, BATCH, 3, True, epoch),
        validation_data=pipeline.eval_dataset(X, Y, BATCH),
        epochs=3,
        initial_epoch=1,
        shuffle=False,  # the dataset shuffles; Keras warns when asked to as well
        callbacks=[EpochOrder(epoch), record],
        verbose=0,
    )
    assert history.epoch == [1, 2]
    # The optimizer's step count after each call: three steps an epoch, whatever the grouping.
    assert seen == ([[1, 2, 3], [4, 5, 6]] if steps_per_execution == 1 else [[2, 3], [5, 6]])
    assert len(history.history["val_loss"]) == 2
    # A known length: no "ran out of data" warning (an error under this project's pytest).
    assert model.evaluate(pipeline.eval_dataset(X, Y, BATCH), verbose=0) > 0
