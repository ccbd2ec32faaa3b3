"""What predict and evaluate read: a table, an image folder, image files or NumPy arrays,
turned into batches of the model's input exactly as training prepared its data.

Memory stays bounded by the batch: a table is read whole by pyarrow (its columns, as
numbers) and encoded a batch at a time; images are decoded a batch at a time; an .npy
file is mapped, not read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from kinit_cli.data import image_pipeline, images, table_encoding, tables
from kinit_cli.data.preprocessing import ImageFormat, Preprocessing
from kinit_cli.data.splits import shape_fits
from kinit_cli.errors import DataError, UsageError

ARRAY_SUFFIXES = (".npy", ".npz")
X_KEYS = ("x", "x_test")  # an .npz's inputs, and the labels beside each
Y_KEYS = {"x": "y", "x_test": "y_test"}


class Target(Protocol):
    """What inputs are prepared for (runs.LoadedRun): its preprocessing and classes."""

    target: str
    preprocessing: Preprocessing
    recorded: bool  # the run's preprocessing.json (False: the fallback for older runs)

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def task(self) -> str: ...


@dataclass(frozen=True)
class Batch:
    """Examples as the model takes them, their ids (row numbers or paths) and labels."""

    x: np.ndarray
    ids: np.ndarray
    y: np.ndarray | None = None
    unseen: dict[str, int] = field(default_factory=dict)  # category column -> new values


@dataclass(frozen=True)
class Input:
    """One INPUT, ready to be read in batches of any size."""

    name: str  # as the user gave it
    kind: str  # arrays | table | images
    rows: int
    id_column: str  # row | path
    labelled: bool
    make: Callable[[int], Iterator[Batch]] = field(repr=False)

    def batches(self, size: int) -> Iterator[Batch]:
        return self.make(size)

    def steps(self, size: int) -> int:
        return math.ceil(self.rows / size)


def open_input(
    source: str | Path | Sequence[str] | np.ndarray, run: Target, labels: bool = False
) -> Input:
    """`source` as batches for `run`'s model; `labels`: evaluate's, so the labels must be
    there. DataError for an input that does not exist, cannot be read, or does not fit."""
    if isinstance(source, np.ndarray):
        return _arrays("the array", source, None, run, labels)
    if not isinstance(source, str | Path):
        given = [str(s) for s in source]
        if len(given) != 1:
            return _image_files(given, run, labels)
        source = given[0]
    name, path = str(source), Path(source)
    if not path.exists():
        raise DataError(f"{name} does not exist")
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return _array_file(name, path, run, labels)
    if tables.is_table(path):
        return _table(name, path, run, labels)
    if run.preprocessing.table is not None:
        raise DataError(
            f"{name} is not a table, and {run.target} was trained on one: give a "
            f"{', '.join(tables.SUFFIXES)} file with the columns "
            f"{', '.join(run.preprocessing.table.columns)}"
        )
    if path.is_dir():
        return _image_folder(name, path, run, labels)
    if path.suffix.lower() in images.EXTENSIONS:
        return _image_files([name], run, labels)
    raise DataError(
        f"{name}: expected a table ({', '.join(tables.SUFFIXES)}), an image folder, image "
        f"files ({', '.join(images.EXTENSIONS)}) or NumPy arrays (.npy, .npz)"
    )


# --------------------------------------------------------------------------- arrays


def _array_file(name: str, path: Path, run: Target, labels: bool) -> Input:
    """An .npy file (mapped, no labels) or an .npz (`x` or `x_test`, or its only array, with
    `y` or `y_test` as labels)."""
    try:
        if path.suffix.lower() == ".npy":
            return _arrays(
                name, np.load(path, mmap_mode="r", allow_pickle=False), None, run, labels
            )
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            key = next((k for k in X_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(
                    f"{name} holds {', '.join(keys) or 'no arrays'}; kinit reads the inputs from "
                    f"{' or '.join(X_KEYS)} (or the only array), the labels from "
                    f"{' or '.join(Y_KEYS.values())}"
                )
            x = archive[key]
            y_key = Y_KEYS.get(key)
            y = archive[y_key] if y_key in keys else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{name} cannot be read as NumPy arrays: {exc}") from exc
    return _arrays(name, x, y, run, labels)


def _arrays(name: str, x: np.ndarray, y: np.ndarray | None, run: Target, labels: bool) -> Input:
    prep = run.preprocessing
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{name} holds {x.dtype} values; expected numbers")
    shape = _example_shape(name, x.shape, prep)
    if y is not None:
        y = _array_labels(name, y, len(x), run)
    _require_labels(name, y is not None, labels, "y or y_test in an .npz beside x or x_test")
    # The run's record divides the source's values, whatever their type, as training did
    # (digits' 0..16 by 16); a run without one divided uint8 pixels only.
    integer = np.issubdtype(x.dtype, np.integer)
    scale = np.float32(prep.scale) if prep.scale and (integer or run.recorded) else None

    def make(size: int) -> Iterator[Batch]:
        for start in range(0, len(x), size):
            stop = min(len(x), start + size)
            out = np.array(x[start:stop], dtype=np.float32)
            if scale is not None:
                out /= scale
            ids = np.arange(start, stop)
            yield Batch(out.reshape(len(out), *shape), ids, None if y is None else y[start:stop])

    return Input(name, "arrays", len(x), "row", y is not None, make)


def _example_shape(name: str, shape: tuple[int, ...], prep: Preprocessing) -> tuple[int, ...]:
    """One example's shape as the model takes it: (H, W) images get a channel axis, and
    are flattened when the run flattened them; DataError when it does not fit."""
    if len(shape) < 2:
        raise DataError(f"{name} has shape {shape}; expected one row (or image) per example")
    example = tuple(shape[1:])
    want = prep.input_shape
    if len(example) == 2 and len(want) == 3:
        example = (*example, 1)
    if prep.flatten or len(want) == 1:
        example = (math.prod(example),)
    if not shape_fits(want, example):
        raise DataError(
            f"{name} has examples of shape {tuple(shape[1:])} ({math.prod(shape[1:])} values), "
            f"but the model takes {list(want)}"
        )
    return example


def _array_labels(name: str, y: np.ndarray, n: int, run: Target) -> np.ndarray:
    """Labels beside arrays: class ids the run knows (a regression's values as float32)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(
            f"{name}: the labels have shape {y.shape}; expected ({n},), one per example"
        )
    if run.task == "regression":
        return y.astype(np.float32)
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise DataError(f"{name}: the labels hold {y.dtype} values; expected class ids")
    ids = y.astype(np.int64)
    classes = run.class_names
    bad = np.flatnonzero((ids < 0) | (ids >= len(classes)))
    if bad.size:
        raise DataError(
            f"{name}: row {int(bad[0])} has the label {int(ids[bad[0]])}, a class the run "
            f"never saw; its classes are {tables.listed(classes)}"
        )
    return ids


# --------------------------------------------------------------------------- tables


def _table(name: str, path: Path, run: Target, labels: bool) -> Input:
    """A table with the run's feature columns (the label column optional), encoded with the
    run's vocabularies and statistics a batch at a time."""
    prep = run.preprocessing
    fmt = prep.table
    if fmt is None:
        raise DataError(
            f"{name} is a table, but {run.target} was not trained on one (it takes "
            f"{prep.kind}); its input shape is {list(prep.input_shape)}"
        )
    names = tables.column_names(path)
    table_encoding.check_same_columns(path, names, fmt)
    labelled = fmt.label in names
    _require_labels(name, labelled, labels, f"the label column {fmt.label!r}")
    table = tables.read(path, [*fmt.columns, *([fmt.label] if labelled else [])])
    y = (
        table_encoding.labels_for(table, fmt, prep.class_names, prep.num_classes)
        if labelled
        else None
    )

    def make(size: int) -> Iterator[Batch]:
        for start in range(0, table.n_rows, size):
            rows = np.arange(start, min(table.n_rows, start + size))
            encoded = table_encoding.encode(table, fmt, rows)
            yield Batch(encoded.x, rows, None if y is None else y[rows], dict(encoded.unseen))

    return Input(name, "table", table.n_rows, "row", labelled, make)


# --------------------------------------------------------------------------- images


def _image_folder(name: str, path: Path, run: Target, labels: bool) -> Input:
    """A folder of class folders (its `test/` part when it has train/ and test/), labelled
    by folder name; or a folder of images alone, unlabelled."""
    loose = sorted(
        p.name
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in images.EXTENSIONS
    )
    if loose and not any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        return _image_files([str(path / n) for n in loose], run, labels, name)
    folder = images.list_folder(path)
    part = "test" if "test" in folder.parts else "all"
    relative, ids = folder.parts[part]
    y = _folder_labels(name, folder.class_names, ids, run)
    shown = [str(Path(name) / r) for r in relative]
    return _decoded(name, shown, [str(p) for p in folder.absolute(part)], y, run)


def _folder_labels(name: str, found: Sequence[str], ids: np.ndarray, run: Target) -> np.ndarray:
    """The folder's class ids as the run's: by class name, not by the folder's own order."""
    if run.task == "regression":
        raise DataError(f"{name}: a folder's classes cannot label a regression")
    classes = run.class_names
    unknown = [c for c in found if c not in classes]
    if unknown:
        raise DataError(
            f"{name} has the class folder{'s' * (len(unknown) > 1)} {tables.listed(unknown)}, "
            f"a class the run never saw; its classes are {tables.listed(classes)}"
        )
    mapping = np.array([classes.index(c) for c in found], dtype=np.int64)
    return mapping[ids]


def _image_files(given: Sequence[str], run: Target, labels: bool, name: str | None = None) -> Input:
    name = name or (given[0] if len(given) == 1 else f"{len(given)} image files")
    missing = [g for g in given if not Path(g).is_file()]
    if missing:
        raise DataError(f"{missing[0]} does not exist (or is not a file)")
    other = [g for g in given if Path(g).suffix.lower() not in images.EXTENSIONS]
    if other:
        raise DataError(
            f"{other[0]}: several INPUTs are image files ({', '.join(images.EXTENSIONS)}); "
            "give a table or arrays alone"
        )
    _require_labels(name, False, labels, "class folders (FOLDER/CLASS/IMAGE.png)")
    return _decoded(name, list(given), [str(Path(g).absolute()) for g in given], None, run)


def _decoded(
    name: str, shown: list[str], paths: list[str], y: np.ndarray | None, run: Target
) -> Input:
    """Image files decoded a batch at a time by the run's pipeline (data/image_pipeline.py), every
    file's header read first, so an undecodable one is named before any row is written.

    Always through the resizing pipeline, to the run's size: an image of that size comes
    out with the values the run trained on (a bilinear resize to its own size changes
    nothing), one of another size is resized as image_dataset_from_directory would."""
    prep = run.preprocessing
    trained = prep.images or _format_of(name, prep)
    images.scan(paths, trained.size, trained.color_mode)
    fmt = replace(trained, resized=True)
    ids = np.array(shown, dtype=object)
    absolute = np.array(paths)

    def make(size: int) -> Iterator[Batch]:
        dataset = image_pipeline.eval_dataset(absolute, None, size, fmt, prep.scale, prep.flatten)
        start = 0
        for x in dataset.as_numpy_iterator():
            stop = start + len(x)
            yield Batch(x, ids[start:stop], None if y is None else y[start:stop])
            start = stop

    return Input(name, "images", len(paths), "path", y is not None, make)


def _format_of(name: str, prep: Preprocessing) -> ImageFormat:
    """How to decode images for a model with no record of it (a .keras file): resized to
    its input, 3 channels or 1 as it takes."""
    shape = prep.input_shape
    if prep.kind == "table" or len(shape) != 3 or shape[0] is None or shape[2] not in (1, 3):
        raise DataError(
            f"{name}: images need a model that takes images (height, width, 1 or 3 "
            f"channels); this one takes {list(shape)}"
        )
    mode = "rgb" if shape[2] == 3 else "grayscale"
    return ImageFormat(size=(int(shape[0]), int(shape[1])), color_mode=mode, resized=True)


# --------------------------------------------------------------------------- common


def _require_labels(name: str, labelled: bool, needed: bool, where: str) -> None:
    if needed and not labelled:
        raise UsageError(f"{name} has no labels to evaluate against; kinit reads them from {where}")
