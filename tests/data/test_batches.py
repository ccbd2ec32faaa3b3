"""The NumPy input pipeline of the JAX and torch backends: its order, its division, its
partial and padded batches."""

from __future__ import annotations

import numpy as np

from kinit_cli.data import batches
from kinit_cli.data.splits import divided as _divided


def _pixels(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n * 4, dtype=np.uint8).reshape(n, 4) * 6
    return x, np.arange(n, dtype=np.int64)


def test_an_epochs_order_depends_on_the_seed_and_the_epoch_alone():
    first = batches.epoch_order(100, seed=7, epoch=3)
    assert sorted(first.tolist()) == list(range(100))
    # Nothing that came before changes it: drawn again, after other epochs, it is the same.
    batches.epoch_order(100, seed=7, epoch=4)
    assert batches.epoch_order(100, seed=7, epoch=3).tolist() == first.tolist()
    assert batches.epoch_order(100, seed=7, epoch=4).tolist() != first.tolist()
    assert batches.epoch_order(100, seed=8, epoch=3).tolist() != first.tolist()


def test_training_batches_follow_the_epoch_counter_and_end_with_a_partial_batch():
    x, y = _pixels()
    epoch = batches.EpochCounter(0)
    data = batches.train_batches(x, y, 4, seed=1, shuffle=True, epoch=epoch, scale=255.0)
    assert len(data) == 3
    seen = [data[i][1].tolist() for i in range(len(data))]
    assert [len(b) for b in seen] == [4, 4, 2]
    assert seen == [b.tolist() for b in np.split(batches.epoch_order(10, 1, 0), [4, 8])]
    epoch.assign(5)
    order = batches.epoch_order(10, 1, 5).tolist()
    assert [v for i in range(len(data)) for v in data[i][1].tolist()] == order
    # An epoch resumed on its own sees the same batches.
    resumed = batches.train_batches(
        x, y, 4, seed=1, shuffle=True, epoch=batches.EpochCounter(5), scale=255.0
    )
    assert [resumed[i][1].tolist() for i in range(3)] == [data[i][1].tolist() for i in range(3)]


def test_pixels_stay_uint8_and_each_batch_is_divided_in_float32_as_the_data_loader_does():
    x, y = _pixels()
    data = batches.eval_batches(x, y, 4, scale=255.0)
    assert data.x.dtype == np.uint8
    got = np.concatenate([data[i][0] for i in range(len(data))])
    assert got.dtype == np.float32
    assert got.tobytes() == _divided(x, 255.0).tobytes()
    assert np.concatenate([data[i][1] for i in range(len(data))]).tolist() == list(range(10))


def test_without_shuffle_every_epoch_is_in_the_arrays_order():
    x, y = _pixels()
    data = batches.train_batches(x, y, 3, 1, shuffle=False, epoch=batches.EpochCounter(2))
    assert [data[i][1].tolist() for i in range(len(data))] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert data[0][0].dtype == np.uint8  # no scale: the arrays as they are


def test_a_batch_that_does_not_split_across_devices_is_padded_with_weight_zero():
    x, y = _pixels()
    data = batches.eval_batches(x, y, 4, scale=None, pad_to=4)
    bx, by, weights = data[2]  # the partial batch: examples 8 and 9
    assert bx.shape == (4, 4) and by.tolist() == [8, 9, 8, 9]
    assert weights.tolist() == [2.0, 2.0, 0.0, 0.0]
    # Keras's default reduction (sum over the batch size) then gives the real examples' mean.
    losses = np.array([0.5, 1.5, 9.0, 9.0], np.float32)
    assert float(np.sum(losses * weights) / len(losses)) == 1.0
    full = data[0]
    assert full[2].tolist() == [1.0, 1.0, 1.0, 1.0] and full[1].tolist() == [0, 1, 2, 3]
