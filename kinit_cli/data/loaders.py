"""A table or a folder of class folders loaded as Splits: split by class when the source has
no test part (splitting.py), prepared as the training part says (tables.py and
table_encoding.py, images.py), and recorded (preprocessing.py) so that predict and evaluate
repeat exactly what training did.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from kinit_cli.config.settings import Data
from kinit_cli.data import images, splitting, table_encoding, tables
from kinit_cli.data.preprocessing import ImageFormat, Preprocessing, SplitRecord, TableFormat, Task
from kinit_cli.data.splits import Splits, shape_fits
from kinit_cli.errors import DataError


def table(
    path: Path,
    section: Data,
    input_shape: tuple[int | None, ...],
    seed: int | None,
    task: Task,
    recorded: SplitRecord | None,
    prep: Preprocessing | None,
) -> Splits:
    """A table's rows: features encoded as the training part says, labels as class ids (or
    values, for a regression)."""
    names = tables.column_names(path)
    tables.check_columns(path, names, section.label, section.features)
    label = str(section.label)
    features = list(section.features or [c for c in names if c != label])
    data = tables.read(path, [*features, label])
    if prep is not None and prep.table is not None:
        task = prep.table.task
        class_names, num_classes = prep.class_names, prep.num_classes
        y = table_encoding.labels_for(data, prep.table, class_names, num_classes)
    else:
        y, class_names, num_classes = table_encoding.label_values(data, label, task)
        if task == "classification":
            _two_classes(y, class_names, f"the label column {label!r} of {path}")
    source = f"table {path} ({data.n_rows:,} rows, {len(features)} features)"
    parts = _parts(
        y if task == "classification" else None, data.n_rows, section, seed, source, recorded, None
    )
    if prep is not None and prep.table is not None:
        fmt = prep.table
    else:
        fmt = table_encoding.fit_format(data, parts.train, features, label, task, section.normalize)
        unused = tuple(c for c in names if c not in features and c != label)
        fmt = dataclasses.replace(fmt, unused=unused)
    x = table_encoding.encode(data, fmt).x
    _fits(input_shape, fmt.width, f"{path} gives {fmt.width} inputs per row ({_widths(fmt)})")
    record = Preprocessing(
        kind="table",
        input_shape=tuple(input_shape),
        class_names=class_names,
        num_classes=num_classes,
        table=fmt,
    )
    members = SplitRecord(
        seed=_seed(seed),
        test_split=section.test_split,
        validation_split=section.validation_split,
        train=tuple(int(i) for i in parts.train),
        validation=tuple(int(i) for i in parts.validation),
        test=tuple(int(i) for i in parts.test),
        stratified=task == "classification",
        members="rows",
    )
    return _splits(
        path.stem, source, x, y, parts, section.limit, num_classes or 0, None, record, members
    )


def image_folder(
    path: Path,
    section: Data,
    input_shape: tuple[int | None, ...],
    seed: int | None,
    recorded: SplitRecord | None,
    prep: Preprocessing | None,
) -> Splits:
    """A folder of class folders: the files' paths, split by class, decoded batch by batch."""
    folder = images.list_folder(path)
    names = classes_of(folder, path)
    if prep is not None and prep.class_names is not None and tuple(prep.class_names) != names:
        raise DataError(
            f"{path} has the classes {', '.join(names)}, the run was trained on "
            f"{', '.join(prep.class_names)}"
        )
    relative, y, given_test = _image_members(folder)
    source = f"image folder {path} ({len(relative):,} images in {len(names)} classes)"
    parts = _parts(y, len(relative), section, seed, source, recorded, given_test, relative)
    used = np.concatenate([parts.train, parts.validation, parts.test])
    absolute = np.array([str(path / r) for r in relative])
    if prep is not None and prep.images is not None:
        fmt = prep.images
    else:
        fmt = images.scan(list(absolute[np.sort(used)]), section.image_size, section.color_mode)
    flatten = bool(section.flatten) or (section.flatten is None and len(input_shape) == 1)
    size = math.prod(fmt.shape)
    _fits(input_shape, size if flatten else fmt.shape, f"the images of {path} are {_hwc(fmt)}")
    scale = 255.0 if section.normalize else None
    record = Preprocessing(
        kind="images",
        input_shape=tuple(input_shape),
        scale=scale,
        flatten=flatten,
        class_names=names,
        num_classes=len(names),
        images=fmt,
    )
    members = SplitRecord(
        seed=_seed(seed),
        test_split=0.0 if given_test is not None else section.test_split,
        validation_split=section.validation_split,
        train=tuple(relative[i] for i in parts.train),
        validation=tuple(relative[i] for i in parts.validation),
        test=tuple(relative[i] for i in parts.test),
        members="files",
    )
    return _splits(
        path.name, source, absolute, y, parts, section.limit, len(names), scale, record, members
    )


def classes_of(folder: images.ImageFolder, path: Path) -> tuple[str, ...]:
    """The folder's class names; DataError when there is one only."""
    if len(folder.class_names) < 2:
        only = folder.class_names[0] if folder.class_names else "none"
        raise DataError(
            f"{path} has one class folder only ({only}); a classifier needs at least two, "
            "one folder of images per class"
        )
    return folder.class_names


def _image_members(folder: images.ImageFolder) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(relative paths, labels, the indices of a given test part or None) of every image."""
    if "all" in folder.parts:
        relative, y = folder.parts["all"]
        return list(relative), y, None
    train, y_train = folder.parts["train"]
    test, y_test = folder.parts["test"]
    given = np.arange(len(train), len(train) + len(test))
    return [*train, *test], np.concatenate([y_train, y_test]), given


def _parts(
    y: np.ndarray | None,
    n: int,
    section: Data,
    seed: int | None,
    source: str,
    recorded: SplitRecord | None,
    given_test: np.ndarray | None,
    members: list[str] | None = None,
) -> splitting.Parts:
    """The parts: recorded, or the given test part and a validation hold-out from the rest,
    or drawn by class."""
    if recorded is not None:
        return _recorded(recorded, n, source, members)
    if given_test is not None:
        rest = np.setdiff1d(np.arange(n), given_test)
        train, val = splitting.hold_out(y, rest, section.validation_split, _seed(seed))
        return splitting.Parts(train, val, given_test)
    return splitting.split(y, n, section.test_split, section.validation_split, _seed(seed), source)


def _recorded(
    recorded: SplitRecord, n: int, source: str, members: list[str] | None
) -> splitting.Parts:
    """A run's split.json as indices into the source; DataError where it no longer fits."""
    where = {m: i for i, m in enumerate(members)} if members is not None else None

    def indices(part: tuple[int | str, ...]) -> np.ndarray:
        out = []
        for m in part:
            i = where.get(m) if where is not None else m
            if not isinstance(i, int) or not 0 <= i < n:
                raise DataError(
                    f"the run's split.json names {m!r}, which {source} no longer has: the "
                    "data changed since training; give the data to evaluate explicitly"
                )
            out.append(i)
        return np.array(out, dtype=np.int64)

    return splitting.Parts(
        indices(recorded.train), indices(recorded.validation), indices(recorded.test)
    )


def _splits(
    name: str,
    source: str,
    x: np.ndarray,
    y: np.ndarray,
    parts: splitting.Parts,
    limit: int | None,
    num_classes: int,
    scale: float | None,
    record: Preprocessing,
    members: SplitRecord,
) -> Splits:
    """Splits of the parts, each at most `limit` examples spread evenly over it."""
    train, val, test = (_limited(p, limit) for p in (parts.train, parts.validation, parts.test))
    if not len(test):
        raise DataError(f"{source}: the test part is empty; raise data.test_split")
    return Splits(
        name,
        source,
        x[train],
        y[train],
        x[val] if len(val) else None,
        y[val] if len(val) else None,
        x[test],
        y[test],
        num_classes,
        scale,
        preprocessing=record,
        split=members,
    )


def _limited(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most `limit` of the indices, evenly spread (a prefix would keep the first classes
    of a source sorted by class)."""
    if limit is None or len(indices) <= limit:
        return indices
    return indices[(np.arange(limit) * len(indices)) // limit]


def _two_classes(y: np.ndarray, names: tuple[str, ...] | None, what: str) -> None:
    present = np.unique(y)
    if len(present) < 2:
        only = names[int(present[0])] if names and len(present) else str(present[0])
        raise DataError(
            f"{what} holds one class only ({only!r}); a classifier needs at least two "
            "(for a number to predict, set compile.loss to mean_squared_error)"
        )


def _fits(input_shape: tuple[int | None, ...], have: int | tuple[int, ...], what: str) -> None:
    """DataError naming the input_shape to set when the examples do not fit the model."""
    shape = (have,) if isinstance(have, int) else tuple(have)
    if not shape_fits(input_shape, shape):
        raise DataError(
            f"{what} but model.input_shape is {list(input_shape)}. Set model.input_shape "
            f"to {list(shape)}."
        )


def _widths(fmt: TableFormat) -> str:
    parts = [
        f.name if f.width == 1 and f.kind == "number" else f"{f.name}: {f.width}"
        for f in fmt.features
    ]
    shown = ", ".join(parts[:8]) + (f" and {len(parts) - 8} more" if len(parts) > 8 else "")
    return shown


def _hwc(fmt: ImageFormat) -> str:
    h, w, c = fmt.shape
    return f"{h}x{w} with {c} channel{'s' if c > 1 else ''} ({h * w * c} values)"


def _seed(seed: int | None) -> int:
    return 0 if seed is None else int(seed)
