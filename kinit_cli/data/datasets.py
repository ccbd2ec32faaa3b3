"""Data sets for training: one loader per source, split, shaped and normalised (the tf.data
pipelines over them are in pipeline.py).

Sources: scikit-learn's bundled `digits` (the offline default), the Keras downloads
(`mnist`, `fashion_mnist`, `cifar10`), and local files given as `data.path`: a folder of
IDX files (the MNIST format, plain or .gz) or an .npz with x_train, y_train, x_test, y_test.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy

from kinit_cli.errors import (
    DataError,
    DeclaredSizeError,
    NonFiniteDataError,
    did_you_mean,
    keras_message,
)
from kinit_cli.runtime import memory
from kinit_cli.runtime.imports import keras
from kinit_cli.storage import bounded

# name -> what Keras stores under its datasets folder (a file, or a folder for the
# sets that come as several files).
KERAS_SETS = {
    "mnist": "mnist.npz",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar-10-batches-py-target",
}
NAMES = ("digits", *KERAS_SETS)
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# IDX type codes (the third byte of the magic number) -> NumPy dtype.
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_DIGITS_TEST_FRACTION = 0.2
# Values per step of the finite-values scan: 1 MiB of booleans at a time, whatever the size.
_FINITE_CHUNK = 1 << 20


@dataclass
class Splits:
    """The examples of one data set, split and shaped for the model.

    Pixels stored as uint8 stay uint8, and `scale` says what to divide them by: a quarter of
    the memory of float32, and a quarter of the bytes each batch gathers. The pipelines
    (pipeline.py) normalise each batch with the same float32 division NumPy would have
    made, so the model sees bit-identical inputs. `scale` None: the arrays are already the
    model's float32.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    scale: float | None = None

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """Examples of one split as the model takes them: float32, normalised."""
        return x if self.scale is None else _divided(x, self.scale)

    @property
    def sizes(self) -> dict[str, int]:
        """Examples per split (validation 0 when there is none)."""
        validation = 0 if self.x_val is None else len(self.x_val)
        return {"train": len(self.x_train), "validation": validation, "test": len(self.x_test)}


@dataclass
class _SourceArrays:
    """Arrays as a source holds them, and the value that maps their pixels to 1.0."""

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: float | None  # None: decide from the dtype


def load(
    section: dict[str, Any],
    input_shape: tuple[int | None, ...],
    seed: int | None,
    base_dir: Path,
) -> Splits:
    """Load the `data:` section's data set, split and shaped to fit `input_shape`.

    Args:
        section: the validated `data:` section (defaults filled).
        input_shape: the model's input shape without the batch axis; None matches any size.
        seed: the run's seed; chooses the validation hold-out (None: 0).
        base_dir: the folder a relative `data.path` is resolved against.
    """
    raw = _read(section, base_dir)
    _check_finite(raw)
    splits = {
        "train": (raw.x_train, _labels(raw.y_train, "y_train")),
        "test": (raw.x_test, _labels(raw.y_test, "y_test")),
    }
    for split, (x, y) in splits.items():
        if len(x) != len(y):
            raise DataError(
                f"{raw.source}: the {split} split has {len(x)} examples but {len(y)} labels"
            )
    # Counted over the whole data set, before the hold-out and `limit` take examples away.
    num_classes = 1 + max(int(y.max(initial=0)) for _, y in splits.values())
    if section.get("validation_split"):
        x, y = splits["train"]
        train, val = _hold_out(len(x), section["validation_split"], seed)
        splits["train"], splits["validation"] = (x[train], y[train]), (x[val], y[val])
    limit = section.get("limit")  # after the hold-out: at most `limit` in every split
    splits = {split: (x[:limit], y[:limit]) for split, (x, y) in splits.items()}
    if not len(splits["train"][0]) or not len(splits["test"][0]):
        raise DataError(
            f"{raw.source} has {len(splits['train'][0])} training and "
            f"{len(splits['test'][0])} test examples; both splits need at least one"
        )
    normalize, flatten = section.get("normalize", True), section.get("flatten")
    scale = None
    if all(x.dtype == np.uint8 for x, _ in splits.values()):
        scale = (raw.scale or 255.0) if normalize else 1.0  # divided batch by batch
    else:
        splits = {
            split: (_normalized(x, raw.scale, normalize), y) for split, (x, y) in splits.items()
        }
    shaped = {split: (_fit_shape(x, input_shape, flatten), y) for split, (x, y) in splits.items()}
    return Splits(
        raw.name,
        raw.source,
        *shaped["train"],
        *shaped.get("validation", (None, None)),
        *shaped["test"],
        num_classes,
        scale,
    )


def _read(section: dict[str, Any], base_dir: Path) -> _SourceArrays:
    """The source the section names: `path` when given, else `name`."""
    if section.get("path"):
        given = Path(section["path"]).expanduser()
        path = given if given.is_absolute() else base_dir / given
        if not path.exists():
            raise DataError(
                f"data.path {section['path']!r} does not exist: there is no file or folder "
                f"{path}. Give a folder of IDX files or an .npz file."
            )
        if path.is_dir():
            return _read_idx_folder(path)
        what = bounded.kind_of(path)
        if what is not None:
            raise DataError(
                f"data.path {section['path']!r} is {what}, not a file: give a folder of IDX "
                "files or an .npz file."
            )
        return _read_npz(path)
    name = section.get("name")
    if name == "digits":
        return _read_digits()
    if name in KERAS_SETS:
        return _read_keras(name)
    known = f"Known data sets: {', '.join(NAMES)}"
    if not name:
        raise DataError(f"give data.name or data.path. {known}.")
    raise DataError(
        f"unknown data set {name!r}.{did_you_mean(name, NAMES)} {known}; "
        "or set data.path to a folder of IDX files or an .npz file."
    )


def _read_digits() -> _SourceArrays:
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target)
    # A fixed split, independent of the run's seed, so every run tests on the same 360.
    order = np.random.default_rng(0).permutation(n)
    n_test = math.ceil(n * _DIGITS_TEST_FRACTION)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    images = digits.images  # float64 in 0..16
    return _SourceArrays(
        "digits",
        f"scikit-learn digits (bundled, {n:,} images)",
        images[train],
        digits.target[train],
        images[test],
        digits.target[test],
        scale=16.0,
    )


def _keras_cache() -> Path:
    """Where Keras's get_file keeps its downloads (its own rules for KERAS_HOME and /tmp)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    home = os.path.expanduser(home)
    if not os.access(home, os.W_OK):
        home = "/tmp/.keras"
    return Path(home) / "datasets"


def _read_keras(name: str) -> _SourceArrays:
    expected = _keras_cache() / KERAS_SETS[name]
    module = getattr(keras().datasets, name)
    try:
        # get_file reports its download on stdout; stdout belongs to the CLI's output.
        with contextlib.redirect_stdout(sys.stderr):
            (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as exc:
        state = "could not be read from" if expected.exists() else "is not in"
        raise DataError(
            f"the {name} data set {state} the Keras cache and could not be downloaded "
            f"({keras_message(exc)}). Keras expected it at {expected}. Without internet "
            "access, set data.path to a folder of IDX files or an .npz instead, e.g. "
            "--set data.path=/usr/share/datasets/fashion-mnist (Debian's package "
            "dataset-fashion-mnist installs Fashion-MNIST there), or train on the bundled "
            "digits with configs/digits.yaml."
        ) from exc
    return _SourceArrays(name, f"Keras {name} ({expected})", x_train, y_train, x_test, y_test, None)


def _read_idx_folder(folder: Path) -> _SourceArrays:
    found: dict[str, Path] = {}
    for stem in IDX_FILES:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                what = bounded.kind_of(candidate)
                if what is not None:
                    raise DataError(f"{candidate} is {what}, not an IDX file")
                found[stem] = candidate
                break
    missing = [stem for stem in IDX_FILES if stem not in found]
    if missing:
        held = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(held[:12]) + (f" and {len(held) - 12} more" if len(held) > 12 else "")
        raise DataError(
            f"{folder} lacks the IDX file{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (each may end in .gz). It holds: {shown or 'nothing'}."
        )
    arrays = [_read_idx(found[stem], 3 if "images" in stem else 1) for stem in IDX_FILES]
    for images, labels in ((0, 1), (2, 3)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{found[IDX_FILES[images]]} holds {len(arrays[images])} images but "
                f"{found[IDX_FILES[labels]]} holds {len(arrays[labels])} labels"
            )
    return _SourceArrays(folder.name, f"IDX files in {folder}", *arrays, scale=None)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file: 2 zero bytes, a type code, the number of dimensions, their sizes
    (big-endian uint32), then the values in C order. Streamed into an array of the size the
    header declares, checked first; reading stops one byte past it (a .gz file can inflate
    to any size)."""
    try:
        opened = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
        with opened as f:
            dims, dtype = _idx_header(path, f, ndim)
            size = math.prod(dims) * dtype.itemsize
            if path.suffix != ".gz":
                _check_idx_size(path, dims, size, path.stat().st_size - 4 - 4 * ndim)
            bounded.refuse_memory(
                path, f"its header declares {dims} values of {dtype}, {{size}}", size
            )
            out = np.empty(dims, dtype)
            held = f.readinto(memoryview(out.reshape(-1).view(np.uint8)))
            extra = len(f.read(1)) if held == size else 0
    except EOFError as exc:
        raise DataError(f"{path} is truncated: the compressed data ends early") from exc
    except (OSError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    _check_idx_size(path, dims, size, held, more=bool(extra))
    return out


def _idx_header(path: Path, f: Any, ndim: int) -> tuple[tuple[int, ...], np.dtype]:
    """The dimensions and dtype an IDX file's header declares; DataError for another file."""
    head = f.read(4)
    expected = 0x0800 | ndim
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    if magic is None or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or head[3] != ndim:
        kind = "image" if ndim == 3 else "label"
        found = "is shorter than 4 bytes" if magic is None else f"is 0x{magic:08X}"
        raise DataError(
            f"{path} is not an IDX {kind} file: its magic number {found}, "
            f"expected 0x{expected:08X} ({ndim} dimension{'s' if ndim > 1 else ''} "
            "of unsigned bytes)"
        )
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path} is truncated: its header ends after {4 + len(sizes)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(sizes, ">u4", count=ndim))
    return dims, np.dtype(_IDX_TYPES[head[2]])


def _check_idx_size(
    path: Path, dims: tuple[int, ...], size: int, held: int, more: bool = False
) -> None:
    """DataError unless the file holds exactly the `size` bytes its header promises."""
    if held == size and not more:
        return
    problem = "is truncated" if held < size else "has trailing bytes"
    holds = f"more than {held}" if more else str(held)
    raise DataError(
        f"{path} {problem}: its header promises {dims} values ({size} bytes), "
        f"the file holds {holds} bytes of data"
    )


def _read_npz(path: Path) -> _SourceArrays:
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path} is not an .npz file (a zip of .npy arrays, as numpy.savez writes). "
            "data.path takes a folder of IDX files or an .npz file."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(
                    f"{path} lacks the key{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)}; it holds: {', '.join(archive.files) or 'nothing'}. "
                    f"kinit reads {', '.join(NPZ_KEYS)}."
                )
            _check_npz_headers(path, archive.zip)
            arrays = [archive[k] for k in NPZ_KEYS]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} cannot be read as an .npz file: {exc}") from exc
    name = path.stem
    return _SourceArrays(name, f"NumPy archive {path}", *arrays, scale=None)


def _check_npz_headers(path: Path, archive: zipfile.ZipFile) -> None:
    """Each array's .npy header (shape, dtype) read before its values: numbers only, one row
    per example, no more bytes than its member holds, and all of them within memory."""
    total = 0
    for key in NPZ_KEYS:
        names = archive.namelist()
        info = archive.getinfo(f"{key}.npy" if f"{key}.npy" in names else key)
        with archive.open(info) as member:
            version = npy.read_magic(member)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(member)
            header = member.tell()
        problem = _npz_problem(shape, dtype)
        if problem:
            raise DataError(f"{path}: {key} {problem}")
        size = math.prod(shape) * dtype.itemsize
        if size > info.file_size - header:
            raise DeclaredSizeError(
                f"{path}: {key} declares shape {shape} of {dtype} ({memory.size_text(size)}) "
                f"but its member holds {memory.size_text(info.file_size - header)}",
                str(path),
                size,
                info.file_size - header,
            )
        total += size
    bounded.refuse_memory(path, f"its arrays ({', '.join(NPZ_KEYS)}) declare {{size}}", total)


# NumPy dtype kinds -> what the values are, for those no model trains on.
_NOT_NUMBERS = {
    "U": "text",
    "S": "bytes",
    "M": "dates and times",
    "m": "time differences",
    "O": "Python objects",
    "c": "complex numbers",
    "V": "raw bytes",
}


def _npz_problem(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """What is wrong with an array of this header for training, or None."""
    if dtype.names:
        return (
            f"holds records with the fields {', '.join(dtype.names)} ({dtype}); expected "
            "an array of numbers (integers or floats)"
        )
    if dtype.kind in _NOT_NUMBERS:
        return f"holds {_NOT_NUMBERS[dtype.kind]} ({dtype}); expected numbers (integers or floats)"
    if not shape:
        return "is a single value (shape ()); expected an array with one row per example"
    return None


def nonfinite(array: np.ndarray, seen_as: Any = None) -> tuple[int, tuple[int, ...] | None]:
    """(how many, the index of the first) of the NaN and infinite values in `array`, or in
    `array` cast to `seen_as` (float64 data becomes infinite where float32 cannot hold it).

    Integer and boolean arrays (uint8 pixels) hold none and are not read. Float arrays are
    scanned a block of examples at a time, so the scan needs _FINITE_CHUNK booleans, never a
    mask the size of the data set.
    """
    if not np.issubdtype(array.dtype, np.inexact):
        return 0, None
    array = np.atleast_1d(array)
    rows = max(1, _FINITE_CHUNK // max(1, math.prod(array.shape[1:])))
    count, first = 0, None
    for start in range(0, len(array), rows):
        block = array[start : start + rows]
        if seen_as is not None:
            with np.errstate(over="ignore"):
                block = block.astype(seen_as)
        bad = np.isfinite(block)
        np.logical_not(bad, out=bad)
        n = int(np.count_nonzero(bad))
        if n and first is None:
            at = np.unravel_index(int(np.argmax(bad)), bad.shape)
            first = (start + int(at[0]), *(int(i) for i in at[1:]))
        count += n
    return count, first


def _check_finite(raw: _SourceArrays) -> None:
    """NonFiniteDataError naming every array that holds NaN or infinite values, or (x only)
    values past float32's range, which the model's float32 inputs turn infinite: trained on,
    they make a NaN model that would still be reported as completed."""
    found = _nonfinite_arrays(raw, None)
    what = "non-finite value{s} (NaN or infinite)"
    fix = "replace those values or drop their examples"
    if not found:
        found = _nonfinite_arrays(raw, np.float32)
        limit = float(np.finfo(np.float32).max)
        what = f"value{{s}} beyond float32's range (+-{limit:.4g}), the model's input type"
        fix = "scale those values down or drop their examples"
    if not found:
        return
    parts = [
        f"{key} has {count} {what.format(s='s' if count > 1 else '')}, "
        f"first at index {first[0] if len(first) == 1 else first}"
        for key, (count, first) in found.items()
    ]
    raise NonFiniteDataError(
        f"{raw.source}: {'; '.join(parts)}. kinit trains only on finite data: {fix}.", found
    )


def _nonfinite_arrays(raw: _SourceArrays, seen_as: Any) -> dict[str, tuple[int, Any]]:
    """Array name -> (count, first index) of its non-finite values (`seen_as`: x cast so)."""
    found = {}
    for key in NPZ_KEYS if seen_as is None else ("x_train", "x_test"):
        count, first = nonfinite(getattr(raw, key), seen_as)
        if count:
            found[key] = (count, first)
    return found


def _labels(y: np.ndarray, key: str) -> np.ndarray:
    """Integer class ids as int64, shape (N,): (N, 1) columns flattened."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{key} has shape {y.shape}; expected one integer class id per example, "
            "shape (N,) (not one-hot)"
        )
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{key} holds {y.dtype} values; expected integer class ids")
    if len(y) and y.min() < 0:
        raise DataError(f"{key} holds the label {_label_text(y.min())}; class ids start at 0")
    largest = np.iinfo(np.int64).max
    if len(y) and y.max() >= largest + 1:  # exact for uint64 and float64 alike
        raise DataError(
            f"{key} holds the label {_label_text(y.max())}, past the largest class id kinit "
            f"can hold ({largest}); class ids run 0..units-1 of the last layer"
        )
    return y.astype(np.int64)


def _label_text(value: Any) -> str:
    """A label as the data holds it: 3 for 3.0, 1e+300 for a float too long to write out."""
    if isinstance(value, np.floating) and abs(value) >= 1e20:
        return f"{float(value):g}"
    return str(int(value))


def _hold_out(n: int, fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: a subset chosen by the seed, each kept in source order."""
    n_val = max(1, int(n * fraction))
    if n_val >= n:
        raise DataError(f"data.validation_split {fraction} leaves no training examples out of {n}")
    order = np.random.default_rng(0 if seed is None else seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _normalized(x: np.ndarray, scale: float | None, normalize: bool) -> np.ndarray:
    """float32; with `normalize`, pixels mapped to [0, 1] (uint8 / 255; floats kept)."""
    if not normalize:
        return x.astype(np.float32)
    if scale is None:
        if np.issubdtype(x.dtype, np.floating):
            return x.astype(np.float32)
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(
                f"cannot tell the pixel range of {x.dtype} data with values from {x.min()} "
                f"to {x.max()}; store uint8 pixels or floats, or set data.normalize: false"
            )
        scale = 255.0
    return _divided(x, scale)


def _divided(x: np.ndarray, scale: float) -> np.ndarray:
    """x / scale in float32: the division the pipelines repeat batch by batch."""
    out = x.astype(np.float32)  # a copy: safe to divide in place, no float64 temporary
    out /= np.float32(scale)
    return out


def _fit_shape(
    x: np.ndarray, input_shape: tuple[int | None, ...], flatten: bool | None
) -> np.ndarray:
    """Images as (N, H, W, C), flattened when asked (or when the model takes vectors)."""
    if x.ndim < 2:
        raise DataError(
            f"expected examples with at least one axis each, got data of shape {x.shape}"
        )
    if x.ndim == 3:
        x = x[..., np.newaxis]
    image = x.shape[1:]
    if flatten or (flatten is None and len(input_shape) == 1):
        x = x.reshape(len(x), -1)
    example = x.shape[1:]
    fits = len(example) == len(input_shape) and all(
        want is None or want == have for want, have in zip(input_shape, example, strict=True)
    )
    if not fits:
        size = math.prod(image)
        options = f"[{size}] (flattened)"
        if len(image) > 1:
            options += f" or {list(image)} (images, with data.flatten unset or false)"
        raise DataError(
            f"data has examples of shape {image} ({size} values) but model.input_shape "
            f"is {list(input_shape)}. Set model.input_shape to {options}."
        )
    return x
