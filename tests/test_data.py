"""Data sets: every source read from tiny real files, the splits, and resumable pipelines."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from kinit_cli import data, schema
from kinit_cli.callbacks import EpochOrder
from kinit_cli.errors import DataError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Synthetic IDX data: 6 training and 3 test images of 4x4 pixels with known values.
X_TRAIN = np.arange(6 * 16, dtype=np.uint8).reshape(6, 4, 4)
Y_TRAIN = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
X_TEST = (200 + np.arange(3 * 16)).astype(np.uint8).reshape(3, 4, 4)
Y_TEST = np.array([2, 1, 0], dtype=np.uint8)


def section(**overrides: Any) -> dict[str, Any]:
    """A `data:` section as schema.py resolves it: every key, defaults filled."""
    base = {key: field.default for key, field in schema.SCHEMA["data"].items()}
    return {**base, **overrides}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080N, N big-endian sizes, the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, gz: bool = False, **replace: bytes) -> Path:
    """The four MNIST-layout files of X_TRAIN/Y_TRAIN/X_TEST/Y_TEST; `replace` swaps one's bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = dict(
        zip(data.IDX_FILES, map(idx_bytes, (X_TRAIN, Y_TRAIN, X_TEST, Y_TEST)), strict=True)
    )
    for stem, raw in contents.items():
        raw = replace.get(stem.replace("-", "_"), raw)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return folder


def counting_npz(path: Path, n_train: int = 100, n_test: int = 50) -> Path:
    """An .npz whose example i is a 2x2 image of value i: any split tells which it holds."""
    x_train = np.repeat(np.arange(n_train, dtype=np.uint8), 4).reshape(n_train, 2, 2)
    x_test = np.repeat(np.arange(n_test, dtype=np.uint8), 4).reshape(n_test, 2, 2)
    np.savez(
        path,
        x_train=x_train,
        y_train=np.arange(n_train) % 10,
        x_test=x_test,
        y_test=np.arange(n_test) % 10,
    )
    return path


def ids(x: np.ndarray) -> list[int]:
    """The example numbers of a counting_npz split loaded with normalize: false."""
    return x.reshape(len(x), -1)[:, 0].astype(int).tolist()


def message(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    return str(excinfo.value)


# ---- digits, the offline default -----------------------------------------------------


def test_digits_is_a_fixed_80_20_split_scaled_to_unit_range():
    splits = data.load(section(), (64,), seed=1, base_dir=Path("."))
    assert (splits.name, splits.source) == ("digits", "scikit-learn digits (bundled, 1,797 images)")
    assert splits.x_train.shape == (1437, 64) and splits.x_test.shape == (360, 64)
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    assert splits.x_val is None and splits.y_val is None
    assert splits.num_classes == 10
    assert splits.x_train.min() == 0.0 and splits.x_train.max() == 1.0
    # The test split is the same 360 images whatever the run's seed.
    assert np.bincount(splits.y_test).tolist() == [29, 38, 33, 40, 33, 39, 32, 42, 41, 33]
    other = data.load(section(), (8, 8, 1), seed=2, base_dir=Path("."))
    assert other.x_test.shape == (360, 8, 8, 1)
    np.testing.assert_array_equal(other.x_test.reshape(360, 64), splits.x_test)


def test_digits_pixels_are_the_bundled_values_over_16():
    from sklearn.datasets import load_digits

    splits = data.load(section(), (8, 8, 1), seed=None, base_dir=Path("."))
    # The train split keeps source order: its first images are bundled images 0, 1 and 3.
    expected = (load_digits().images[[0, 1, 3]] / 16).astype(np.float32)
    np.testing.assert_array_equal(splits.x_train[:3, :, :, 0], expected)
    assert splits.y_train[:3].tolist() == [0, 1, 3]


# ---- local files: IDX and npz --------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_folder_round_trip_exact_pixels(tmp_path, gz):
    folder = write_idx_folder(tmp_path / "tiny-mnist", gz=gz)
    splits = data.load(section(path=str(folder)), (4, 4, 1), seed=0, base_dir=Path("/elsewhere"))
    assert (splits.name, splits.source) == ("tiny-mnist", f"IDX files in {folder}")
    assert splits.x_train.shape == (6, 4, 4, 1) and splits.x_test.shape == (3, 4, 4, 1)
    # uint8 pixels stay uint8 (a quarter of the memory); the model sees them over 255.
    assert splits.x_train.dtype == np.uint8 and splits.scale == 255.0
    np.testing.assert_array_equal(splits.x_train[..., 0], X_TRAIN)
    model_input = splits.model_input(splits.x_test)
    assert model_input.dtype == np.float32
    np.testing.assert_array_equal(model_input[..., 0], X_TEST.astype(np.float32) / 255)
    assert splits.y_train.tolist() == [0, 1, 2, 0, 1, 2] and splits.y_test.tolist() == [2, 1, 0]
    assert splits.y_train.dtype == np.int64 and splits.num_classes == 3


def test_relative_path_is_resolved_against_the_config_folder(tmp_path):
    write_idx_folder(tmp_path / "sets" / "tiny")
    splits = data.load(section(path="sets/tiny"), (16,), seed=0, base_dir=tmp_path)
    assert splits.x_train.shape == (6, 16)
    x = splits.model_input(splits.x_train)
    assert x[1, :3].tolist() == pytest.approx([16 / 255, 17 / 255, 18 / 255])


def test_npz_with_colour_images_and_column_labels(tmp_path):
    rng = np.random.default_rng(5)
    x_train = rng.integers(0, 256, (5, 3, 3, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    path = tmp_path / "colour.npz"
    np.savez(
        path,
        x_train=x_train,
        y_train=np.array([[0], [3], [1], [3], [2]], np.uint8),
        x_test=x_test,
        y_test=np.array([[4], [0]], np.uint8),
    )
    splits = data.load(section(path=str(path)), (3, 3, 3), seed=0, base_dir=tmp_path)
    assert (splits.name, splits.source) == ("colour", f"NumPy archive {path}")
    np.testing.assert_array_equal(splits.x_train, x_train)
    np.testing.assert_array_equal(
        splits.model_input(splits.x_train), x_train.astype(np.float32) / 255
    )
    assert splits.y_train.tolist() == [0, 3, 1, 3, 2] and splits.y_test.tolist() == [4, 0]
    assert splits.num_classes == 5


def test_float_data_is_kept_and_normalize_false_does_not_scale(tmp_path):
    path = tmp_path / "floats.npz"
    x = np.array([[0.5, -2.0], [3.0, 0.25]])
    np.savez(path, x_train=x, y_train=[0, 1], x_test=x, y_test=[1, 0])
    floats = data.load(section(path=str(path)), (2,), seed=0, base_dir=tmp_path)
    assert floats.x_train.dtype == np.float32 and floats.x_train.tolist() == x.tolist()
    assert floats.scale is None and floats.model_input(floats.x_train) is floats.x_train
    folder = write_idx_folder(tmp_path / "idx")
    raw = data.load(section(path=str(folder), normalize=False), (16,), seed=0, base_dir=tmp_path)
    assert raw.scale == 1.0
    model_input = raw.model_input(raw.x_test)
    assert model_input.dtype == np.float32 and model_input.max() == 247.0


def test_uint8_and_other_splits_together_are_all_made_float32(tmp_path):
    path = tmp_path / "mixed.npz"
    x_train = np.array([[0, 51], [255, 102]], np.uint8)
    np.savez(path, x_train=x_train, y_train=[0, 1], x_test=np.array([[0.5, 1.0]]), y_test=[1])
    splits = data.load(section(path=str(path)), (2,), seed=0, base_dir=tmp_path)
    assert splits.scale is None and splits.x_train.dtype == splits.x_test.dtype == np.float32
    np.testing.assert_array_equal(splits.x_train, x_train.astype(np.float32) / 255)
    assert splits.x_test.tolist() == [[0.5, 1.0]]


# ---- splits and shapes ---------------------------------------------------------------


def test_validation_split_is_a_seeded_hold_out_kept_in_source_order(tmp_path):
    path = counting_npz(tmp_path / "count.npz")
    held_out = section(path=str(path), normalize=False, validation_split=0.2)
    first, again, other = (data.load(held_out, (4,), seed, tmp_path) for seed in (3, 3, 4))
    assert len(first.x_train) == 80 and len(first.x_val) == 20 and len(first.x_test) == 50
    train, val = ids(first.x_train), ids(first.x_val)
    assert sorted(train + val) == list(range(100))
    assert train == sorted(train) and val == sorted(val)
    assert first.y_val.tolist() == [i % 10 for i in val]
    assert ids(again.x_val) == val and ids(other.x_val) != val
    assert ids(first.x_test) == list(range(50))


@pytest.mark.parametrize(
    ("split", "limit", "sizes"),
    [(0.0, 10, (10, 0, 10)), (0.2, 10, (10, 10, 10)), (0.2, 30, (30, 20, 30))],
)
def test_limit_applies_to_each_split_after_the_hold_out(tmp_path, split, limit, sizes):
    path = counting_npz(tmp_path / "count.npz")
    splits = data.load(
        section(path=str(path), validation_split=split, limit=limit), (4,), 0, tmp_path
    )
    val = 0 if splits.x_val is None else len(splits.x_val)
    assert (len(splits.x_train), val, len(splits.x_test)) == sizes
    assert len(splits.y_train) == sizes[0] and len(splits.y_test) == sizes[2]


@pytest.mark.parametrize(
    ("flatten", "input_shape", "shape"),
    [
        (None, (16,), (6, 16)),
        (None, (None,), (6, 16)),
        (None, (4, 4, 1), (6, 4, 4, 1)),
        (None, (None, None, 1), (6, 4, 4, 1)),
        (True, (16,), (6, 16)),
        (False, (4, 4, 1), (6, 4, 4, 1)),
    ],
)
def test_flatten_follows_the_model_input_unless_set(tmp_path, flatten, input_shape, shape):
    folder = write_idx_folder(tmp_path / "idx")
    splits = data.load(section(path=str(folder), flatten=flatten), input_shape, 0, tmp_path)
    assert splits.x_train.shape == shape


@pytest.mark.parametrize(
    ("flatten", "input_shape"), [(None, (784,)), (False, (64,)), (None, (28, 28, 1))]
)
def test_shape_mismatch_names_both_shapes_and_the_fix(flatten, input_shape):
    with pytest.raises(DataError) as excinfo:
        data.load(section(flatten=flatten), input_shape, 0, Path("."))
    assert message(excinfo) == (
        f"data has examples of shape (8, 8, 1) (64 values) but model.input_shape is "
        f"{list(input_shape)}. Set model.input_shape to [64] (flattened) or [8, 8, 1] "
        "(images, with data.flatten unset or false)."
    )


# ---- errors --------------------------------------------------------------------------


def test_missing_idx_files_are_named_with_what_the_folder_holds(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    (folder / "t10k-images-idx3-ubyte").unlink()
    (folder / "t10k-labels-idx1-ubyte").unlink()
    (folder / "README").write_text("notes")
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(folder)), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"{folder} lacks the IDX files t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
        "(each may end in .gz). It holds: README, train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte."
    )


@pytest.mark.parametrize(
    ("gz", "replace", "text"),
    [
        (
            False,
            {"train_images_idx3_ubyte": idx_bytes(Y_TRAIN)},
            "{train_images} is not an IDX image file: its magic number is 0x00000801, "
            "expected 0x00000803 (3 dimensions of unsigned bytes)",
        ),
        (
            False,
            {"t10k_labels_idx1_ubyte": b"\x08\x03"},
            "{test_labels} is not an IDX label file: its magic number is shorter than 4 "
            "bytes, expected 0x00000801 (1 dimension of unsigned bytes)",
        ),
        (
            False,
            {"t10k_images_idx3_ubyte": idx_bytes(X_TEST)[:-5]},
            "{test_images} is truncated: its header promises (3, 4, 4) values (48 bytes), "
            "the file holds 43 bytes of data",
        ),
        (
            False,
            {"t10k_images_idx3_ubyte": idx_bytes(X_TEST)[:10]},
            "{test_images} is truncated: its header ends after 10 bytes",
        ),
        (
            False,
            {"train_labels_idx1_ubyte": idx_bytes(Y_TRAIN[:5])},
            "{train_images} holds 6 images but {train_labels} holds 5 labels",
        ),
        (
            True,
            {"t10k_images_idx3_ubyte": idx_bytes(X_TEST)[:-5]},
            "{test_images} is truncated: its header promises (3, 4, 4) values (48 bytes), "
            "the file holds 43 bytes of data",
        ),
    ],
    ids=["bad-magic", "too-short", "truncated", "truncated-header", "count-mismatch", "gz"],
)
def test_broken_idx_files_are_named(tmp_path, gz, replace, text):
    folder = write_idx_folder(tmp_path / "idx", gz=gz, **replace)
    suffix = ".gz" if gz else ""
    names = {
        "train_images": folder / f"train-images-idx3-ubyte{suffix}",
        "train_labels": folder / f"train-labels-idx1-ubyte{suffix}",
        "test_images": folder / f"t10k-images-idx3-ubyte{suffix}",
        "test_labels": folder / f"t10k-labels-idx1-ubyte{suffix}",
    }
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(folder)), (16,), 0, tmp_path)
    assert message(excinfo) == text.format(**names)


def test_cut_off_gzip_stream_is_reported_as_truncated(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", gz=True)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(folder)), (16,), 0, tmp_path)
    assert message(excinfo) == f"{path} is truncated: the compressed data ends early"


def test_npz_missing_keys_lists_the_keys_present(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=X_TRAIN, y_train=Y_TRAIN, images=X_TEST)
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(path)), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"{path} lacks the keys x_test, y_test; it holds: x_train, y_train, images. "
        "kinit reads x_train, y_train, x_test, y_test."
    )


def test_a_file_that_is_not_an_npz(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(path)), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"{path} is not an .npz file (a zip of .npy arrays, as numpy.savez writes). "
        "data.path takes a folder of IDX files or an .npz file."
    )


def test_nonexistent_path_shows_where_it_was_looked_for(tmp_path):
    with pytest.raises(DataError) as excinfo:
        data.load(section(path="sets/missing"), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"data.path 'sets/missing' does not exist: there is no file or folder "
        f"{tmp_path / 'sets' / 'missing'}. Give a folder of IDX files or an .npz file."
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "mnsit",
            "unknown data set 'mnsit'. Did you mean 'mnist'? Known data sets: digits, mnist, "
            "fashion_mnist, cifar10; or set data.path to a folder of IDX files or an .npz file.",
        ),
        (
            None,
            "give data.name or data.path. Known data sets: digits, mnist, fashion_mnist, cifar10.",
        ),
    ],
)
def test_unknown_data_set_name(name, text):
    with pytest.raises(DataError) as excinfo:
        data.load(section(name=name), (16,), 0, Path("."))
    assert message(excinfo) == text


@pytest.mark.parametrize(
    ("arrays", "text"),
    [
        (
            {"y_train": np.eye(3)[[0, 1, 2, 0, 1, 2]]},
            "y_train has shape (6, 3); expected one integer class id per example, "
            "shape (N,) (not one-hot)",
        ),
        (
            {"y_test": np.array([0.5, 1.0, 2.0])},
            "y_test holds float64 values; expected integer class ids",
        ),
        ({"y_test": np.array([0, -1, 2])}, "y_test holds the label -1; class ids start at 0"),
        (
            {"x_test": X_TEST.astype(np.int64) + 100},
            "cannot tell the pixel range of int64 data with values from 300 to 347; "
            "store uint8 pixels or floats, or set data.normalize: false",
        ),
        (
            {"y_train": Y_TRAIN[:4]},
            "NumPy archive {path}: the train split has 6 examples but 4 labels",
        ),
    ],
    ids=["one-hot", "fractional", "negative", "pixel-range", "count-mismatch"],
)
def test_npz_contents_that_cannot_be_used(tmp_path, arrays, text):
    path = tmp_path / "bad.npz"
    contents = {"x_train": X_TRAIN, "y_train": Y_TRAIN, "x_test": X_TEST, "y_test": Y_TEST}
    np.savez(path, **{**contents, **arrays})
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(path)), (16,), 0, tmp_path)
    assert message(excinfo) == text.format(path=path)


# Where each Keras loader keeps its download, and the module whose get_file fetches it.
KERAS_FILES = {
    "mnist": ("mnist.npz", "keras.src.datasets.mnist"),
    "fashion_mnist": ("fashion-mnist", "keras.src.datasets.fashion_mnist"),
    "cifar10": ("cifar-10-batches-py-target", "keras.src.datasets.cifar10"),
}


@pytest.mark.parametrize("name", list(KERAS_FILES))
def test_keras_download_offline_explains_the_cache_and_the_alternatives(
    tmp_path, monkeypatch, name
):
    cached, module = KERAS_FILES[name]
    offline = Exception(
        "URL fetch failure on https://example.invalid/x: None -- "
        "[Errno -3] Temporary failure in name resolution"
    )

    def get_file(*args: Any, **kwargs: Any) -> str:
        raise offline

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(f"{module}.get_file", get_file)
    with pytest.raises(DataError) as excinfo:
        data.load(section(name=name), (784,), 0, tmp_path)
    assert message(excinfo) == (
        f"the {name} data set is not in the Keras cache and could not be downloaded "
        "(URL fetch failure on https://example.invalid/x: None -- [Errno -3] Temporary "
        f"failure in name resolution). Keras expected it at {tmp_path / 'datasets' / cached}. "
        "Without internet access, set data.path to a folder of IDX files or an .npz "
        "instead, e.g. --set data.path=/usr/share/datasets/fashion-mnist (Debian's "
        "package dataset-fashion-mnist installs Fashion-MNIST there), or train on the "
        "bundled digits with configs/digits.yaml."
    )
    assert excinfo.value.__cause__ is offline


def test_unreadable_keras_cache_file_is_not_called_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"not a zip")
    monkeypatch.setattr("keras.src.datasets.mnist.get_file", lambda *a, **k: 1 / 0)
    with pytest.raises(DataError) as excinfo:
        data.load(section(name="mnist"), (784,), 0, tmp_path)
    assert message(excinfo).startswith(
        "the mnist data set could not be read from the Keras cache and could not be "
        "downloaded (division by zero). "
    )


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_real_fashion_mnist_idx_files():
    splits = data.load(section(path=str(FASHION_MNIST)), (28, 28, 1), 0, Path("."))
    assert splits.x_train.shape == (60000, 28, 28, 1) and splits.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(splits.y_train).tolist() == [6000] * 10
    assert np.bincount(splits.y_test).tolist() == [1000] * 10
    assert splits.x_train.dtype == np.uint8 and splits.scale == 255.0
    assert splits.x_train.min() == 0 and splits.x_train.max() == 255


# ---- pipelines -----------------------------------------------------------------------

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
    dataset = data.train_dataset(x, y, BATCH, seed, shuffle, epoch)
    out = []
    for e in epochs:
        epoch.assign(e)
        out += batches(dataset)
    return out


def test_train_dataset_epoch_order_depends_only_on_seed_and_epoch():
    dataset = data.train_dataset(X, Y, BATCH, 7, True, tf.Variable(0, dtype=tf.int64))
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
    expected = data._divided(pixels, scale)
    evaluated = batches(data.eval_dataset(pixels, labels, 10, scale=scale))
    got = np.concatenate([x for x, _ in evaluated])
    assert got.dtype == np.float32
    assert got.tobytes() == expected.tobytes()
    epoch = tf.Variable(3, dtype=tf.int64)
    trained = batches(data.train_dataset(pixels, labels, 10, 5, True, epoch, scale=scale))
    x, y = (np.concatenate(parts) for parts in zip(*trained, strict=True))
    assert sorted(y.tolist()) == list(range(64))
    assert x.tobytes() == expected[y].tobytes()


def test_eval_dataset_is_in_order_once():
    dataset = data.eval_dataset(X, Y, BATCH)
    assert len(dataset) == 3
    items = batches(dataset)
    assert [y.tolist() for _, y in items] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in items]), X)


def test_pieces_cut_every_batch_among_the_replicas():
    """Three replicas on two workers (one with two): together they hold each whole batch."""
    whole = [y.tolist() for _, y in batches(data.eval_dataset(X, Y, BATCH))]
    worker0 = batches(data.eval_dataset(X, Y, BATCH, data.Pieces(total=3, first=0, count=2)))
    worker1 = batches(data.eval_dataset(X, Y, BATCH, data.Pieces(total=3, first=2, count=1)))
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
    shuffled = data.train_dataset(X, Y, BATCH, 7, True, epoch, data.Pieces(2, 1, 1))
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
        data.train_dataset(X, Y, BATCH, 3, True, epoch),
        validation_data=data.eval_dataset(X, Y, BATCH),
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
    assert model.evaluate(data.eval_dataset(X, Y, BATCH), verbose=0) > 0


def test_importing_data_does_not_import_tensorflow():
    code = "import sys, kinit_cli.data; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
