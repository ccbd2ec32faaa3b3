"""Data sets: every source read from tiny real files, the splits, and resumable pipelines."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinit_cli.config.settings import Data
from kinit_cli.data import datasets as data
from kinit_cli.data import files
from kinit_cli.data.datasets import KINDS
from kinit_cli.errors import DataError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Synthetic IDX data: 6 training and 3 test images of 4x4 pixels with known values.
X_TRAIN = np.arange(6 * 16, dtype=np.uint8).reshape(6, 4, 4)
Y_TRAIN = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
X_TEST = (200 + np.arange(3 * 16)).astype(np.uint8).reshape(3, 4, 4)
Y_TEST = np.array([2, 1, 0], dtype=np.uint8)


def section(**overrides: Any) -> Data:
    """A `data:` section as validation makes it: every key, defaults filled."""
    return Data(**overrides)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080N, N big-endian sizes, the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, gz: bool = False, **replace: bytes) -> Path:
    """The four MNIST-layout files of X_TRAIN/Y_TRAIN/X_TEST/Y_TEST; `replace` swaps one's bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = dict(
        zip(files.IDX_FILES, map(idx_bytes, (X_TRAIN, Y_TRAIN, X_TEST, Y_TEST)), strict=True)
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
    path = tmp_path / "data.bin"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError) as excinfo:
        data.load(section(path=str(path)), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"{path} is not an .npz file (a zip of .npy arrays, as numpy.savez writes). "
        f"data.path takes {KINDS}."
    )


def test_nonexistent_path_shows_where_it_was_looked_for(tmp_path):
    with pytest.raises(DataError) as excinfo:
        data.load(section(path="sets/missing"), (16,), 0, tmp_path)
    assert message(excinfo) == (
        f"data.path 'sets/missing' does not exist: there is no file or folder "
        f"{tmp_path / 'sets' / 'missing'}. Give {KINDS}."
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "mnsit",
            "unknown data set 'mnsit'. Did you mean 'mnist'? Known data sets: digits, mnist, "
            "fashion_mnist, cifar10; or set data.path to " + KINDS + ".",
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


def test_importing_data_or_pipeline_does_not_import_tensorflow():
    code = (
        "import sys, kinit_cli.data.datasets, kinit_cli.data.pipeline; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
