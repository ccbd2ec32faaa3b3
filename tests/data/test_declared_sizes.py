"""Data files from elsewhere: what a path is and what a header declares are checked before
memory is spent, and values are checked as the model will see them. The hostile files are
small (gzip members of zeros, an .npy header with no data); the large ones are read by kinit
in a subprocess under an address-space limit."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy

from kinit_cli.data import datasets as data
from kinit_cli.data.datasets import KINDS
from kinit_cli.errors import DataError, DeclaredSizeError, NonFiniteDataError
from kinit_cli.runtime import memory, switches
from kinit_cli.runtime.switches import Switches
from tests.conftest import MNIST_LIKE, kinit_limited
from tests.data.test_data import X_TRAIN, idx_bytes, section, write_idx_folder
from tests.data.test_data_guards import load_npz, write_npz

MIB = 1 << 20


@pytest.fixture(autouse=True)
def memory_checked() -> Iterator[None]:
    """The checks on, as a command without --ignore-memory-check holds them."""
    with switches.using(Switches()):
        yield


def inflating_gzip(head: bytes, zeros_mib: int) -> bytes:
    """`head` then `zeros_mib` MiB of zeros, as gzip members of about 1 kB each."""
    member = gzip.compress(bytes(MIB))
    return gzip.compress(head) + member * zeros_mib


def hollow_npz(path: Path, key: str, shape: tuple[int, ...]) -> Path:
    """write_npz's arrays with `key` replaced by an .npy header declaring `shape` of float32
    and no values after it."""
    write_npz(path)
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path) as old:
        kept = {n: old.read(n) for n in old.namelist() if n != f"{key}.npy"}
    with zipfile.ZipFile(path, "w") as new:
        for name, raw in kept.items():
            new.writestr(name, raw)
        new.writestr(f"{key}.npy", header.getvalue())  # magic and header, no values
    return path


def load(path: Path) -> data.Splits:
    return data.load(section(path=str(path)), (None,), 0, path.parent)


# --- what a path is --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/dev/zero", "a character device (like /dev/zero, which never ends)"),
        ("/dev/urandom", "a character device (like /dev/zero, which never ends)"),
    ],
)
def test_a_device_as_data_path_is_refused_unread(path, what):
    with pytest.raises(DataError) as caught:
        load(Path(path))
    assert str(caught.value) == (f"data.path {path!r} is {what}, not a file: give {KINDS}.")


def test_a_fifo_as_data_path_is_refused_unopened(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(DataError) as caught:
        load(fifo)
    assert str(caught.value) == (
        f"data.path {str(fifo)!r} is a FIFO (named pipe), which a reader would wait on, not a "
        f"file: give {KINDS}."
    )


def test_a_fifo_in_an_idx_folder_is_named(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    os.mkfifo(folder / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError) as caught:
        load(folder)
    assert str(caught.value) == (
        f"{folder / 't10k-labels-idx1-ubyte'} is a FIFO (named pipe), which a reader would "
        "wait on, not an IDX file"
    )


# --- IDX headers ---------------------------------------------------------------------------


def test_a_gzip_idx_file_is_read_no_further_than_its_header_declares(tmp_path):
    labels = idx_bytes(np.array([0, 1, 2, 0, 1, 2]))
    folder = write_idx_folder(tmp_path / "idx", gz=True)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(inflating_gzip(labels, 64))  # 64 MiB past the header's 6 labels
    with pytest.raises(DataError) as caught:
        load(folder)
    assert str(caught.value) == (
        f"{path} has trailing bytes: its header promises (6,) values (6 bytes), the file holds "
        "more than 6 bytes of data"
    )


def test_an_idx_header_past_the_memory_available_is_refused_before_reading(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "idx", gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(
        gzip.compress(idx_bytes(X_TRAIN)[:4] + np.array([60000, 28, 28], ">u4").tobytes())
    )
    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000)
    with pytest.raises(DeclaredSizeError) as caught:
        load(folder)
    assert str(caught.value) == (
        f"{path}: its header declares (60000, 28, 28) values of uint8, 47.0 MB, but this "
        "machine has 1.0 MB available; pass --ignore-memory-check to try anyway"
    )
    assert caught.value.exit_code == 1 and caught.value.declared == 60000 * 28 * 28


def test_a_plain_idx_header_is_checked_against_the_file_size_first(tmp_path):
    header = idx_bytes(X_TRAIN)[:4] + np.array([100_000, 1000, 1000], ">u4").tobytes()
    folder = write_idx_folder(tmp_path / "idx", train_images_idx3_ubyte=header)
    with pytest.raises(DataError) as caught:
        load(folder)
    assert str(caught.value) == (
        f"{folder / 'train-images-idx3-ubyte'} is truncated: its header promises "
        "(100000, 1000, 1000) values (100000000000 bytes), the file holds 0 bytes of data"
    )


# --- npz headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.array(["a", "b"] * 6), "holds text (<U1); expected numbers (integers or floats)"),
        (
            np.array(["2024-01-01"] * 12, "datetime64[D]"),
            "holds dates and times (datetime64[D]); expected numbers (integers or floats)",
        ),
        (
            np.zeros(12, [("a", "<f4"), ("b", "<i4")]),
            "holds records with the fields a, b ([('a', '<f4'), ('b', '<i4')]); expected an "
            "array of numbers (integers or floats)",
        ),
        (
            np.float32(3.0),
            "is a single value (shape ()); expected an array with one row per example",
        ),
        (
            np.array([1 + 2j] * 12),
            "holds complex numbers (complex128); expected numbers (integers or floats)",
        ),
    ],
    ids=["str", "datetime", "structured", "0-d", "complex"],
)
def test_npz_arrays_that_are_no_numbers_are_named(tmp_path, array, problem):
    path = write_npz(tmp_path / "odd.npz", x_train=array)
    with pytest.raises(DataError) as caught:
        load_npz(path)
    assert str(caught.value) == f"{path}: x_train {problem}"


def test_an_npz_header_declaring_more_than_its_member_holds(tmp_path):
    n = 22 * (1 << 30) // 4  # 22 GiB of float32
    path = hollow_npz(tmp_path / "hollow.npz", "x_train", (n, 1))
    with pytest.raises(DeclaredSizeError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"{path}: x_train declares shape ({n}, 1) of float32 (23.6 GB) but its member holds 0 bytes"
    )


def test_npz_arrays_past_the_memory_available(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "ok.npz")
    monkeypatch.setattr(memory, "available_bytes", lambda: 100)
    with pytest.raises(DeclaredSizeError) as caught:
        load_npz(path)
    # (12 + 4) * 8 float32 values and 16 int64 labels
    assert str(caught.value) == (
        f"{path}: its arrays (x_train, y_train, x_test, y_test) declare 640 bytes, but this "
        "machine has 100 bytes available; pass --ignore-memory-check to try anyway"
    )
    with switches.using(Switches(ignore_memory_check=True)):
        assert load_npz(path).sizes == {"train": 12, "validation": 0, "test": 4}


# --- values as the model sees them --------------------------------------------------------------


def test_float64_values_past_float32_are_refused(tmp_path):
    x = np.random.default_rng(0).random((12, 8))
    x[3, 2] = 1e308
    x[5, 0] = -1e39
    path = write_npz(tmp_path / "wide.npz", x_train=x)
    with pytest.raises(NonFiniteDataError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"NumPy archive {path}: x_train has 2 values beyond float32's range (+-3.403e+38), the "
        "model's input type, first at index (3, 2). kinit trains only on finite data: scale "
        "those values down or drop their examples."
    )
    assert caught.value.found == {"x_train": (2, (3, 2))}


@pytest.mark.parametrize(
    ("y", "label"),
    [
        (np.array([0.0, 1.0, 1e300, 2.0] * 3), "1e+300"),
        (np.array([0, 1, 2**64 - 1, 2] * 3, np.uint64), "18446744073709551615"),
        (np.array([0.0, 1.0, 2.0**63, 2.0] * 3), "9223372036854775808"),
    ],
    ids=["1e300", "uint64-max", "2**63"],
)
def test_labels_past_int64_are_reported_as_they_are(tmp_path, y, label):
    path = write_npz(tmp_path / "labels.npz", y_train=y)
    with pytest.raises(DataError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"y_train holds the label {label}, past the largest class id kinit can hold "
        "(9223372036854775807); class ids run 0..units-1 of the last layer"
    )


def test_a_negative_label_is_reported_as_it_is(tmp_path):
    path = write_npz(tmp_path / "labels.npz", y_train=np.array([0.0, -1e300] * 6))
    with pytest.raises(DataError) as caught:
        load_npz(path)
    assert str(caught.value) == "y_train holds the label -1e+300; class ids start at 0"


# --- kinit train in a subprocess under an address-space limit -----------------------------------


def _train(tmp_path: Path, data_path: str) -> object:
    config = tmp_path / "c.yaml"
    config.write_text(MNIST_LIKE)
    out = tmp_path / "run"
    result = kinit_limited(
        "train",
        str(config),
        "--output",
        str(out),
        "-q",
        "--set",
        f"data.path={data_path}",
        cwd=tmp_path,
    )
    assert not out.exists()
    return result


@pytest.mark.slow
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_train_refuses_a_device_within_memory(tmp_path, device):
    result = _train(tmp_path, device)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (
        f"error: data.path {device!r} is a character device (like /dev/zero, which never "
        f"ends), not a file: give {KINDS}.\n"
    )


@pytest.mark.slow
def test_train_refuses_a_fifo_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    result = _train(tmp_path, str(fifo))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (
        f"error: data.path {str(fifo)!r} is a FIFO (named pipe), which a reader would wait on, "
        f"not a file: give {KINDS}.\n"
    )


@pytest.mark.slow
def test_train_stops_reading_a_gzip_bomb_within_memory(tmp_path):
    images = np.zeros((6, 2, 4), np.uint8)  # 8 values each: MNIST_LIKE's input
    folder = write_idx_folder(tmp_path / "idx", gz=True, train_images_idx3_ubyte=idx_bytes(images))
    test_images = folder / "t10k-images-idx3-ubyte.gz"
    test_images.write_bytes(gzip.compress(idx_bytes(images[:3])))
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(inflating_gzip(idx_bytes(np.array([0, 1, 2, 0, 1, 2])), 6 * 1024))
    assert path.stat().st_size < 8_000_000  # inflates to 6 GiB
    result = _train(tmp_path, str(folder))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (
        f"error: {path} has trailing bytes: its header promises (6,) values (6 bytes), the "
        "file holds more than 6 bytes of data\n"
    )


@pytest.mark.slow
def test_train_refuses_an_npz_header_of_22_gib_within_memory(tmp_path):
    n = 22 * (1 << 30) // 4
    path = hollow_npz(tmp_path / "hollow.npz", "x_train", (n, 8))
    result = _train(tmp_path, str(path))
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr == (
        f"error: {path}: x_train declares shape ({n}, 8) of float32 (189.0 GB) but its member "
        "holds 0 bytes\n"
    )
