"""Data sets for training: one loader per source, split, shaped and normalised (the tf.data
pipelines over them are in pipeline.py).

Sources: scikit-learn's bundled `digits` (the offline default), the Keras downloads
(`mnist`, `fashion_mnist`, `cifar10`), and local files given as `data.path`: a folder of
IDX files (the MNIST format, plain or .gz) or an .npz with x_train, y_train, x_test, y_test,
read by files.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config.settings import Data
from kinit_cli.data import files, images, loaders, tables
from kinit_cli.data.files import NPZ_KEYS
from kinit_cli.data.preprocessing import Preprocessing, SplitRecord, Task
from kinit_cli.data.splits import Splits, divided, shape_fits
from kinit_cli.errors import (
    DataError,
    NonFiniteDataError,
    did_you_mean,
    keras_message,
)
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
# What data.path may name, as messages say it.
KINDS = (
    "a table (.csv, .tsv, .csv.gz, .parquet), a folder of class folders of images, "
    "a folder of IDX files or an .npz file"
)
_DIGITS_TEST_FRACTION = 0.2
# Values per step of the finite-values scan: 1 MiB of booleans at a time, whatever the size.
_FINITE_CHUNK = 1 << 20


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
    section: Data,
    input_shape: tuple[int | None, ...],
    seed: int | None,
    base_dir: Path,
    *,
    task: Task = "classification",
    recorded: SplitRecord | None = None,
    prep: Preprocessing | None = None,
) -> Splits:
    """Load the `data:` section's data set, split and shaped to fit `input_shape`.

    Args:
        section: the validated `data:` section (defaults filled).
        input_shape: the model's input shape without the batch axis; None matches any size.
        seed: the run's seed; chooses the validation hold-out (None: 0).
        base_dir: the folder a relative `data.path` is resolved against.
        task: "regression" when the loss compares values (labels.task_of): a table's
            label column is then a number, not a class.
        recorded: a run's split.json: its parts, instead of drawing them again.
        prep: a run's preprocessing: applied as it was, never fitted again.
    """
    path = data_path(section, base_dir)
    if path is not None and tables.is_table(path):
        return loaders.table(path, section, input_shape, seed, task, recorded, prep)
    if path is not None and images.is_image_folder(path):
        return loaders.image_folder(path, section, input_shape, seed, recorded, prep)
    return _load_arrays(section, input_shape, seed, base_dir)


def data_path(section: Data, base_dir: Path) -> Path | None:
    """`data.path` resolved against the config's folder (None when not given)."""
    if not section.path:
        return None
    given = Path(section.path).expanduser()
    return given if given.is_absolute() else base_dir / given


def _load_arrays(
    section: Data, input_shape: tuple[int | None, ...], seed: int | None, base_dir: Path
) -> Splits:
    """A source of arrays: digits, a Keras download, IDX files or an .npz."""
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
    if section.validation_split:
        x, y = splits["train"]
        train, val = _hold_out(len(x), section.validation_split, seed)
        splits["train"], splits["validation"] = (x[train], y[train]), (x[val], y[val])
    limit = section.limit  # after the hold-out: at most `limit` in every split
    splits = {split: (x[:limit], y[:limit]) for split, (x, y) in splits.items()}
    if not len(splits["train"][0]) or not len(splits["test"][0]):
        raise DataError(
            f"{raw.source} has {len(splits['train'][0])} training and "
            f"{len(splits['test'][0])} test examples; both splits need at least one"
        )
    normalize, flatten = section.normalize, section.flatten
    scale, notes = None, ()
    if all(x.dtype == np.uint8 for x, _ in splits.values()):
        scale = (raw.scale or 255.0) if normalize else 1.0  # divided batch by batch
        divisor = scale
    else:
        divisor = _divisor(splits["train"][0], raw.scale, normalize)
        if normalize and divisor is None:
            notes = (_float_note(raw.source, splits["train"][0]),)
        splits = {
            split: (_normalized(x, raw.scale, normalize), y) for split, (x, y) in splits.items()
        }
    shaped = {split: (_fit_shape(x, input_shape, flatten), y) for split, (x, y) in splits.items()}
    record = Preprocessing(
        kind="arrays",
        input_shape=tuple(input_shape),
        scale=divisor,
        flatten=shaped["train"][0].ndim == 2 and splits["train"][0].ndim > 2,
        num_classes=num_classes,
    )
    return Splits(
        raw.name,
        raw.source,
        *shaped["train"],
        *shaped.get("validation", (None, None)),
        *shaped["test"],
        num_classes,
        scale,
        preprocessing=record,
        notes=notes,
    )


def _divisor(x: np.ndarray, scale: float | None, normalize: bool) -> float | None:
    """What _normalized divides this source's values by (None: nothing)."""
    if not normalize:
        return None
    if scale is not None:
        return scale
    return None if np.issubdtype(x.dtype, np.floating) else 255.0


def _float_note(source: str, x: np.ndarray) -> str:
    """What data.normalize did not do to float data, said once."""
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    return (
        f"data.normalize: {source} holds {x.dtype} values ({low:.4g} to {high:.4g}), used "
        "as they are: normalize divides integer pixels by 255 and standardises table "
        "columns; scale float arrays yourself, or set data.normalize: false to say so"
    )


def _read(section: Data, base_dir: Path) -> _SourceArrays:
    """The source the section names: `path` when given, else `name`."""
    path = data_path(section, base_dir)
    if path is not None:
        check_path(section, path)
        if path.is_dir():
            arrays = files.read_idx_folder(path, KINDS)
            return _SourceArrays(path.name, f"IDX files in {path}", *arrays, scale=None)
        what = bounded.kind_of(path)
        if what is not None:
            raise DataError(f"data.path {section.path!r} is {what}, not a file: give {KINDS}.")
        arrays = files.read_npz(path, KINDS)
        return _SourceArrays(path.stem, f"NumPy archive {path}", *arrays, scale=None)
    name = section.name
    if name == "digits":
        return _read_digits()
    if name in KERAS_SETS:
        return _read_keras(name)
    known = f"Known data sets: {', '.join(NAMES)}"
    if not name:
        raise DataError(f"give data.name or data.path. {known}.")
    raise DataError(
        f"unknown data set {name!r}.{did_you_mean(name, NAMES)} {known}; "
        f"or set data.path to {KINDS}."
    )


def check(section: Data, base_dir: Path) -> None:
    """What `validate` can say of the data without loading it: the path exists and is
    readable, a table has the columns the section names, an image folder has classes."""
    path = data_path(section, base_dir)
    if path is None:
        return
    check_path(section, path)
    if tables.is_table(path):
        tables.check_columns(path, tables.column_names(path), section.label, section.features)
    elif images.is_image_folder(path):
        loaders.classes_of(images.list_folder(path), path)


def check_path(section: Data, path: Path) -> None:
    """DataError for a data.path that is not there or cannot be read."""
    if not path.exists():
        raise DataError(
            f"data.path {section.path!r} does not exist: there is no file or folder {path}. "
            f"Give {KINDS}."
        )
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise DataError(f"data.path {section.path!r} cannot be read: {path} is not readable")


def _read_digits() -> _SourceArrays:
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target)
    # A fixed split, independent of the run's seed, so every run tests on the same 360.
    order = np.random.default_rng(0).permutation(n)
    n_test = math.ceil(n * _DIGITS_TEST_FRACTION)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    pixels = digits.images  # float64 in 0..16
    return _SourceArrays(
        "digits",
        f"scikit-learn digits (bundled, {n:,} images)",
        pixels[train],
        digits.target[train],
        pixels[test],
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
        array = getattr(raw, key)
        if seen_as is not None and array.dtype.itemsize <= np.dtype(seen_as).itemsize:
            continue  # float16 and float32 fit in float32: nothing to cast
        count, first = nonfinite(array, seen_as)
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
    return divided(x, scale)


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
    if not shape_fits(input_shape, example):
        size = math.prod(image)
        options = f"[{size}] (flattened)"
        if len(image) > 1:
            options += f" or {list(image)} (images, with data.flatten unset or false)"
        raise DataError(
            f"data has examples of shape {image} ({size} values) but model.input_shape "
            f"is {list(input_shape)}. Set model.input_shape to {options}."
        )
    return x
